package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

//go:embed page.html
var pageText string

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"duration": duration,
	"percent":  percent,
	"number":   number,
	"orDash":   orDash,
}).Parse(pageText))

// Languages are the languages the page is written in.
var Languages = []string{"en", "ms"}

// WriteHTML writes the report as one page in lang (see Languages): its
// charts are SVG drawn into it, and it loads nothing, runs nothing.
func WriteHTML(w io.Writer, r *Report, lang string) error {
	m, ok := messages[lang]
	if !ok {
		return fmt.Errorf("language %q: the page is written in %s", lang, strings.Join(Languages, ", "))
	}
	data := pageData{Report: r, Lang: lang, T: m,
		From: r.From.Format(time.DateOnly), To: r.To.Add(-time.Nanosecond).Format(time.DateOnly),
		Deadline: duration(float64(r.DeadlineSeconds))}
	for _, l := range r.Lists {
		data.Lists = append(data.Lists, listView{List: l, Latency: latencyChart(l, r.DeadlineSeconds), Use: useChart(l, r.Threshold)})
	}
	return page.Execute(w, data)
}

type pageData struct {
	*Report
	Lang, From, To, Deadline string
	T                        map[string]string
	Lists                    []listView
}

type listView struct {
	List
	Latency, Use *chart
}

// chart is an SVG chart: its size, and what it draws.
type chart struct {
	Width, Height int
	Bars          []bar
	Lines         []line
	Labels        []label
	Title         string
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type line struct {
	X1, Y1, X2, Y2 float64
	Class          string
}

type label struct {
	X, Y   float64
	Text   string
	Anchor string
}

// latencyChart draws, for each version, the median and 95th percentile of
// the time to enforce it as bars, the slowest as a tick, and the deadline
// as a dashed line; nil when no version was enforced. The axis stops at
// four deadlines: what goes past it is drawn to the edge, its time
// written beside.
func latencyChart(l List, deadline int64) *chart {
	var vs []Version
	top := float64(deadline)
	for _, v := range l.Versions {
		if v.WorstSeconds != nil {
			vs = append(vs, v)
			top = math.Max(top, *v.WorstSeconds)
		}
	}
	if len(vs) == 0 {
		return nil
	}
	top = math.Min(top*1.05, 4*float64(deadline))
	const left, right, row = 110.0, 70.0, 28.0
	c := &chart{Width: 720, Height: int(row*float64(len(vs))) + 40}
	scale := (float64(c.Width) - left - right) / top
	x := func(s float64) float64 { return left + math.Min(s, top)*scale }
	for i, v := range vs {
		y := 10 + row*float64(i)
		c.Labels = append(c.Labels, label{X: left - 8, Y: y + 14, Text: strconv.FormatUint(v.Serial, 10), Anchor: "end"})
		c.Bars = append(c.Bars,
			bar{X: left, Y: y + 2, W: x(*v.P95Seconds) - left, H: 16, Class: "p95", Title: "95 %: " + duration(*v.P95Seconds)},
			bar{X: left, Y: y + 6, W: x(*v.MedianSeconds) - left, H: 8, Class: "median", Title: "50 %: " + duration(*v.MedianSeconds)})
		c.Lines = append(c.Lines, line{X1: x(*v.WorstSeconds), Y1: y, X2: x(*v.WorstSeconds), Y2: y + 20, Class: "worst"})
		if *v.WorstSeconds > top {
			c.Labels = append(c.Labels, label{X: x(top) + 6, Y: y + 14, Text: "› " + duration(*v.WorstSeconds), Anchor: "start"})
		}
	}
	bottom := 10 + row*float64(len(vs))
	c.Lines = append(c.Lines, line{X1: x(float64(deadline)), Y1: 4, X2: x(float64(deadline)), Y2: bottom, Class: "deadline"},
		line{X1: left, Y1: bottom, X2: x(top), Y2: bottom, Class: "axis"})
	c.Labels = append(c.Labels, label{X: x(float64(deadline)), Y: bottom + 16, Text: duration(float64(deadline)), Anchor: "middle"},
		label{X: left, Y: bottom + 16, Text: "0", Anchor: "middle"})
	if end := x(top); end-x(float64(deadline)) > 60 {
		c.Labels = append(c.Labels, label{X: end, Y: bottom + 16, Text: duration(top), Anchor: "end"})
	}
	return c
}

// useChart draws the blocked queries of each day as bars; a day below the
// threshold is an outlined bar of the threshold's height, for it is shown
// only as "< k". Nil when the period has no day.
func useChart(l List, threshold uint64) *chart {
	if len(l.BlockedPerDay) == 0 {
		return nil
	}
	top := float64(threshold)
	for _, d := range l.BlockedPerDay {
		top = math.Max(top, float64(d.Queries.N))
	}
	const left, bottom, right, height = 70.0, 30.0, 10.0, 180.0
	c := &chart{Width: 720, Height: int(height + bottom + 10)}
	step := (float64(c.Width) - left - right) / float64(len(l.BlockedPerDay))
	scale := height / (top * 1.05)
	base := height + 10
	every := max(1, int(math.Ceil(float64(len(l.BlockedPerDay))/8)))
	for i, d := range l.BlockedPerDay {
		x := left + step*float64(i)
		n, class := float64(d.Queries.N), "blocked"
		if !d.Queries.Exact() {
			n, class = float64(threshold), "below"
		}
		h := n * scale
		c.Bars = append(c.Bars, bar{X: x + step*0.1, Y: base - h, W: step * 0.8, H: h, Class: class, Title: d.Date + ": " + d.Queries.Shown()})
		if i%every == 0 {
			c.Labels = append(c.Labels, label{X: x + step/2, Y: base + 16, Text: d.Date[5:], Anchor: "middle"})
		}
	}
	c.Lines = append(c.Lines, line{X1: left, Y1: base, X2: float64(c.Width) - right, Y2: base, Class: "axis"})
	c.Labels = append(c.Labels, label{X: left - 6, Y: base - top*scale + 4, Text: number(uint64(top)), Anchor: "end"},
		label{X: left - 6, Y: base + 4, Text: "0", Anchor: "end"})
	return c
}

// duration writes seconds for a reader: "42 s", "3.5 min", "2.1 h".
func duration(s float64) string {
	switch {
	case s < 120:
		return strconv.FormatFloat(math.Round(s*10)/10, 'f', -1, 64) + " s"
	case s < 7200:
		return strconv.FormatFloat(math.Round(s/6)/10, 'f', -1, 64) + " min"
	}
	return strconv.FormatFloat(math.Round(s/360)/10, 'f', -1, 64) + " h"
}

func percent(f *float64) string {
	if f == nil {
		return "–"
	}
	return strconv.FormatFloat(math.Round(*f*1000)/10, 'f', -1, 64) + " %"
}

// number writes n with thin spaces between thousands, as both languages
// read it.
func number(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	return b.String()
}

func orDash(v any) string {
	switch v := v.(type) {
	case *int:
		if v != nil {
			return number(uint64(max(0, *v)))
		}
	case *float64:
		if v != nil {
			return duration(*v)
		}
	}
	return "–"
}
