package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"
	"time"
)

var instColor = map[string]color.RGBA{
	q:    libColor[q],
	rs:   libColor[rs],
	rl:   {44, 160, 44, 255},
	rue:  {255, 127, 14, 255},
	ring: {127, 127, 127, 255}, // the hand-over floor, grey
}

// drawWaitCDF writes a PNG of the waiters' wait (acquire call to lock)
// distribution per library in the 16-instance scenarios: one panel per
// node count and scenario, every round's acquisitions pooled, log time axis
// from 0.01 ms to 10 s. Calls still waiting when a run ended are not in it.
func drawWaitCDF(path string, r *instResults) error {
	var charted []scenario
	for _, sc := range scenarios {
		if sc.chart {
			charted = append(charted, sc)
		}
	}
	const pw, ph, left, top, gapX, gapY = 470, 250, 70, 50, 80, 70
	w := left + len(charted)*(pw+gapX)
	h := top + len(nodeSets)*(ph+gapY) + 20
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)
	text(img, 20, 22, "Waiter's wait (acquire call to lock), cumulative distribution: one process per instance, one lock name", black)
	for row, s := range nodeSets {
		for col, sc := range charted {
			x0, y0 := left+col*(pw+gapX), top+row*(ph+gapY)
			data := map[string][]time.Duration{}
			for _, lib := range s.libs {
				for _, run := range r.runs[instKey{s.n, sc.id, lib}] {
					data[lib] = append(data[lib], run.waits...)
				}
			}
			nodes := fmt.Sprintf("%d nodes", s.n)
			if s.n == 1 {
				nodes = "1 node"
			}
			cdfPanel(img, image.Rect(x0, y0, x0+pw, y0+ph), fmt.Sprintf("%s, (%s) %s", nodes, sc.id, sc.title), s.libs, data)
		}
	}
	x := left
	for _, lib := range nodeSets[len(nodeSets)-1].libs {
		fill(img, image.Rect(x, h-24, x+24, h-18), instColor[lib])
		text(img, x+30, h-16, lib, black)
		x += 160
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return png.Encode(f, img)
}

func cdfPanel(img *image.RGBA, box image.Rectangle, title string, libs []string, data map[string][]time.Duration) {
	lo, hi := math.Log10(0.01), math.Log10(10000) // ms
	xOf := func(msv float64) int {
		v := (math.Log10(max(msv, 0.01)) - lo) / (hi - lo)
		return box.Min.X + int(math.Min(v, 1)*float64(box.Dx()))
	}
	yOf := func(frac float64) int { return box.Max.Y - int(frac*float64(box.Dy())) }
	for _, t := range []float64{0.01, 0.1, 1, 10, 100, 1000, 10000} {
		x := xOf(t)
		vline(img, x, box.Min.Y, box.Max.Y, grid)
		label := fmt.Sprintf("%gms", t)
		if t >= 1000 {
			label = fmt.Sprintf("%gs", t/1000)
		}
		text(img, x-12, box.Max.Y+16, label, black)
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 0.9, 0.99, 1} {
		y := yOf(f)
		hline(img, box.Min.X, box.Max.X, y, grid)
		if f != 0.99 { // too close to p100 to label
			text(img, box.Min.X-44, y+4, fmt.Sprintf("p%g", f*100), black)
		}
	}
	hline(img, box.Min.X, box.Max.X, box.Max.Y, black)
	vline(img, box.Min.X, box.Min.Y, box.Max.Y, black)
	text(img, box.Min.X, box.Min.Y-6, title, black)
	for _, lib := range slices.Backward(libs) { // quorumlock drawn last, on top
		ds := slices.Clone(data[lib])
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		px, py := -1, -1
		for i, d := range ds {
			x, y := xOf(ms(d)), yOf(float64(i+1)/float64(len(ds)))
			if px >= 0 && (x != px || y != py) {
				line(img, px, py, x, y, instColor[lib])
			}
			px, py = x, y
		}
	}
}
