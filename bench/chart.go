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

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

var (
	white    = color.RGBA{255, 255, 255, 255}
	black    = color.RGBA{0, 0, 0, 255}
	grid     = color.RGBA{225, 225, 225, 255}
	libColor = map[string]color.RGBA{
		q:  {31, 119, 180, 255},
		rs: {214, 39, 40, 255},
		fl: {140, 140, 140, 255},
	}
)

// drawChart writes a PNG with two panels, healthy and one node frozen:
// the cumulative distribution of Lock+Unlock latency per library, on a log
// time axis from 0.1 ms to 1 s.
func drawChart(path string, r *results) error {
	const w, h = 1100, 440
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)
	text(img, 20, 22, "Lock+Unlock latency, cumulative distribution (5 local Redis nodes, one goroutine)", black)
	panel(img, image.Rect(60, 50, 530, 380), "all nodes healthy", map[string][]time.Duration{q: r.allLat[q], rs: r.allLat[rs], fl: r.allLat[fl]})
	panel(img, image.Rect(610, 50, 1080, 380), "one node frozen (SIGSTOP)", map[string][]time.Duration{q: r.allFroze[q], rs: r.allFroze[rs]})
	x := 60
	for _, lib := range []string{q, rs, fl} {
		fill(img, image.Rect(x, 410, x+24, 416), libColor[lib])
		text(img, x+30, 418, lib, black)
		x += 160
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return png.Encode(f, img)
}

func panel(img *image.RGBA, box image.Rectangle, title string, data map[string][]time.Duration) {
	lo, hi := math.Log10(0.1), math.Log10(1000) // ms
	xOf := func(msv float64) int {
		v := (math.Log10(max(msv, 0.1)) - lo) / (hi - lo)
		return box.Min.X + int(math.Min(v, 1)*float64(box.Dx()))
	}
	yOf := func(frac float64) int { return box.Max.Y - int(frac*float64(box.Dy())) }
	for _, t := range []float64{0.1, 1, 10, 100, 1000} {
		x := xOf(t)
		vline(img, x, box.Min.Y, box.Max.Y, grid)
		text(img, x-12, box.Max.Y+16, fmt.Sprintf("%gms", t), black)
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 0.9, 1} {
		y := yOf(f)
		hline(img, box.Min.X, box.Max.X, y, grid)
		text(img, box.Min.X-44, y+4, fmt.Sprintf("p%g", f*100), black)
	}
	hline(img, box.Min.X, box.Max.X, box.Max.Y, black)
	vline(img, box.Min.X, box.Min.Y, box.Max.Y, black)
	text(img, box.Min.X+8, box.Min.Y+16, title, black)
	for _, lib := range []string{fl, rs, q} {
		ds := slices.Clone(data[lib])
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		px, py := -1, -1
		for i, d := range ds {
			x, y := xOf(ms(d)), yOf(float64(i+1)/float64(len(ds)))
			if px >= 0 {
				line(img, px, py, x, y, libColor[lib])
			}
			px, py = x, y
		}
	}
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, &image.Uniform{c}, image.Point{}, draw.Src)
}

func hline(img *image.RGBA, x0, x1, y int, c color.Color) {
	for x := x0; x <= x1; x++ {
		img.Set(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.Color) {
	for y := y0; y <= y1; y++ {
		img.Set(x, y, c)
	}
}

// line draws a 2-pixel-wide segment (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0-1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}
