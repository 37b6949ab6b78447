package promtext

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Family is a metric family as Parse reads it.
type Family struct {
	Name, Help, Type string
	Samples          []Sample
}

// Sample is one sample line.
type Sample struct {
	Name   string // with its suffix: _bucket, _sum, _count for histograms
	Labels map[string]string
	Value  float64
}

var nameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// Parse reads the text format and checks what tests rely on: every sample
// belongs to a family declared by a # TYPE line before it (a histogram's
// samples by their _bucket, _sum and _count suffixes), names and labels
// are well formed, values are numbers, a family is declared once, and each
// histogram's buckets are cumulative and end with le="+Inf" equal to its
// _count. It returns the families by name.
func Parse(r io.Reader) (map[string]*Family, error) {
	fams := map[string]*Family{}
	sc := bufio.NewScanner(r)
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
				continue // a comment
			}
			if !nameRE.MatchString(f[2]) {
				return nil, fmt.Errorf("line %d: bad metric name %q", ln, f[2])
			}
			fam := fams[f[2]]
			if fam == nil {
				fam = &Family{Name: f[2]}
				fams[f[2]] = fam
			}
			rest := ""
			if len(f) == 4 {
				rest = f[3]
			}
			if f[1] == "HELP" {
				fam.Help = rest
				continue
			}
			switch rest {
			case "counter", "gauge", "histogram", "summary", "untyped":
			default:
				return nil, fmt.Errorf("line %d: bad type %q", ln, rest)
			}
			if fam.Type != "" || len(fam.Samples) > 0 {
				return nil, fmt.Errorf("line %d: %s declared twice, or after its samples", ln, f[2])
			}
			fam.Type = rest
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", ln, err)
		}
		fam := familyOf(fams, s.Name)
		if fam == nil {
			return nil, fmt.Errorf("line %d: sample %s has no # TYPE line before it", ln, s.Name)
		}
		fam.Samples = append(fam.Samples, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, f := range fams {
		if f.Type == "histogram" {
			if err := checkHistogram(f); err != nil {
				return nil, err
			}
		}
	}
	return fams, nil
}

func familyOf(fams map[string]*Family, name string) *Family {
	if f := fams[name]; f != nil && f.Type != "" {
		return f
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f := fams[base]; f != nil && f.Type == "histogram" {
				return f
			}
		}
	}
	return nil
}

// parseSample reads `name{l="v",...} value`.
func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, fmt.Errorf("no value in %q", line)
	}
	s.Name = line[:i]
	if !nameRE.MatchString(s.Name) {
		return s, fmt.Errorf("bad metric name %q", s.Name)
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				return s, fmt.Errorf("bad labels in %q", line)
			}
			name := rest[:eq]
			if !nameRE.MatchString(name) || strings.Contains(name, ":") {
				return s, fmt.Errorf("bad label name %q in %q", name, line)
			}
			rest = rest[eq+2:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				switch c := rest[j]; {
				case c == '\\' && j+1 < len(rest):
					j++
					switch rest[j] {
					case 'n':
						v.WriteByte('\n')
					case '\\', '"':
						v.WriteByte(rest[j])
					default:
						return s, fmt.Errorf("bad escape in %q", line)
					}
				case c == '"':
					rest, closed = rest[j+1:], true
				default:
					v.WriteByte(c)
				}
				if closed {
					break
				}
			}
			if !closed {
				return s, fmt.Errorf("unterminated label value in %q", line)
			}
			if _, dup := s.Labels[name]; dup {
				return s, fmt.Errorf("label %s twice in %q", name, line)
			}
			s.Labels[name] = v.String()
			rest = strings.TrimPrefix(rest, ",")
		}
	}
	if !strings.HasPrefix(rest, " ") {
		return s, fmt.Errorf("no value in %q", line)
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 { // a value, and maybe a timestamp
		return s, fmt.Errorf("bad value in %q", line)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("bad value in %q: %w", line, err)
	}
	s.Value = v
	return s, nil
}

// checkHistogram checks that each series' buckets are cumulative and end
// with +Inf equal to its _count.
func checkHistogram(f *Family) error {
	type state struct {
		last     float64
		inf      float64
		hasInf   bool
		count    float64
		hasCount bool
	}
	states := map[string]*state{}
	key := func(s Sample) string {
		var parts []string
		for k, v := range s.Labels {
			if k != "le" {
				parts = append(parts, k+"="+v)
			}
		}
		slices.Sort(parts)
		return strings.Join(parts, ",")
	}
	for _, s := range f.Samples {
		st := states[key(s)]
		if st == nil {
			st = &state{}
			states[key(s)] = st
		}
		switch s.Name {
		case f.Name + "_bucket":
			le, ok := s.Labels["le"]
			if !ok {
				return fmt.Errorf("%s: a bucket without le", f.Name)
			}
			if s.Value < st.last {
				return fmt.Errorf("%s: bucket le=%s holds %v, less than the one before", f.Name, le, s.Value)
			}
			st.last = s.Value
			if le == "+Inf" {
				st.inf, st.hasInf = s.Value, true
			}
		case f.Name + "_count":
			st.count, st.hasCount = s.Value, true
		}
	}
	for k, st := range states {
		if !st.hasInf || !st.hasCount || st.inf != st.count {
			return fmt.Errorf("%s{%s}: the +Inf bucket (%v) must be there and equal _count (%v)", f.Name, k, st.inf, st.count)
		}
	}
	return nil
}
