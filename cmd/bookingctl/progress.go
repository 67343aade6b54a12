package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress reports how far a long job (a replay) has come: done of total,
// the rate and the time left. On a terminal it redraws one bar in place;
// otherwise (a log file, CI) it writes a plain line at most every interval,
// so a log is not flooded. Safe for concurrent use.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	label    string
	tty      bool
	now      func() time.Time
	start    time.Time
	interval time.Duration
	last     time.Time
	drawn    bool
}

// barWidth is the number of cells of the terminal bar.
const barWidth = 30

func newProgress(w io.Writer, label string, tty bool, now func() time.Time) *progress {
	interval := 5 * time.Second
	if tty {
		interval = 100 * time.Millisecond
	}
	t := now()
	return &progress{w: w, label: label, tty: tty, now: now, start: t, interval: interval}
}

// Update records that done of total units are finished. total may grow
// while the job runs (events appended during a replay) or be unknown (0).
func (p *progress) Update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	if p.drawn && t.Sub(p.last) < p.interval {
		return
	}
	p.draw(t, done, total, false)
}

// Finish draws the final state and ends the bar's line.
func (p *progress) Finish(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(p.now(), done, total, true)
}

func (p *progress) draw(t time.Time, done, total int64, final bool) {
	p.last, p.drawn = t, true
	elapsed := t.Sub(p.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed.Seconds()
	}
	eta := "?"
	switch {
	case final:
		eta = "done in " + roundDuration(elapsed).String()
	case total > 0 && rate > 0 && done <= total:
		eta = "ETA " + roundDuration(time.Duration(float64(total-done)/rate*float64(time.Second))).String()
	}
	counts := fmt.Sprintf("%d", done)
	if total > 0 {
		counts = fmt.Sprintf("%d/%d %3d%%", done, total, percent(done, total))
	}
	if !p.tty {
		fmt.Fprintf(p.w, "%s: %s, %.0f/s, %s\n", p.label, counts, rate, eta)
		return
	}
	filled := 0
	if total > 0 {
		filled = int(min(done, total) * barWidth / total)
	}
	bar := strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled)
	end := ""
	if final {
		end = "\n"
	}
	// \r returns to the line start and \x1b[K clears what a longer
	// previous line left behind.
	fmt.Fprintf(p.w, "\r%s [%s] %s, %.0f/s, %s\x1b[K%s", p.label, bar, counts, rate, eta, end)
}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 0
	}
	return min(done, total) * 100 / total
}

func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// isTerminal reports whether w is a character device, a terminal in
// practice. It needs no terminal library: a pipe or a file is not one.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// terminal reports whether progress on Stderr may redraw a bar.
func (m *Main) terminal() bool {
	if m.Terminal != nil {
		return m.Terminal()
	}
	return isTerminal(m.Stderr)
}
