// Command testsummary reads the output of `go test -json` on standard input
// and prints what a person wants from a test run: one line per package as
// plain `go test` prints it, the output of every failing test and every
// build error, the list of skipped tests with their reasons, and a closing
// line of exactly this form, alone on its line:
//
//	N passed, N failed, N skipped
//
// Tests and subtests are counted alike (a subtest is one test). A package
// that fails outside any test (it does not build, its TestMain exits non-zero,
// its binary crashes before a test reports) counts as one failed test, so a
// broken build can never close with "0 failed".
//
// Usage:
//
//	go test -json ./... | testsummary [-v] [-no-skip] [-status FILE]
//
// -v prints every line of output as it arrives, as `go test -v` does,
// instead of only what failed.
//
// -status names a file that holds go test's exit status once standard input
// ends; a missing, empty or non-zero status makes the run fail even when no
// event reported a failure (a bad flag or pattern is reported only there).
// -no-skip makes any skipped test fail the run: integration tests must not
// pass by not running.
//
// The exit status is 0 when the run passed, 1 when it failed and 2 on bad
// usage or unreadable input.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	verbose := flag.Bool("v", false, "print all test output as it arrives")
	noSkip := flag.Bool("no-skip", false, "fail the run when any test was skipped")
	status := flag.String("status", "", "file holding go test's exit status, read when standard input ends")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: go test -json ./... | testsummary [-v] [-no-skip] [-status FILE]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	s := newSummary(os.Stdout, *noSkip)
	s.verbose = *verbose
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: read go test output: %v\n", err)
		os.Exit(2)
	}
	if *status != "" {
		s.goStatus = readStatus(*status)
	}
	os.Exit(s.finish())
}

// readStatus returns the exit status stored in path, or -1 when it cannot
// be known.
func readStatus(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// event is one line of `go test -json` (cmd/test2json), including the
// build-output and build-fail lines that carry compiler errors.
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string
	FailedBuild string
}

type line struct {
	test string
	text string
}

// topTest buffers the output of one top-level test and its subtests, in
// arrival order, until the top-level test ends.
type topTest struct {
	lines []line
	// failed holds the names of the tests in this tree that failed. As
	// plain go test does, only their output is shown: a passing subtest
	// of a failing test stays quiet.
	failed map[string]bool
}

type pkgState struct {
	output      []string
	tests       map[string]*topTest
	failedTests int
	done        bool
}

type skip struct {
	pkg, test, reason string
}

type summary struct {
	out     io.Writer
	noSkip  bool
	verbose bool

	passed, failed, skipped int

	pkgs        map[string]*pkgState
	pkgOrder    []string
	buildOutput map[string][]string
	buildFailed map[string]bool
	buildShown  map[string]bool

	skips       []skip
	failedNames []string
	// goStatus is go test's exit status: 0 unless set, -1 when unknown.
	goStatus int
}

func newSummary(out io.Writer, noSkip bool) *summary {
	return &summary{
		out:         out,
		noSkip:      noSkip,
		pkgs:        map[string]*pkgState{},
		buildOutput: map[string][]string{},
		buildFailed: map[string]bool{},
		buildShown:  map[string]bool{},
	}
}

// read consumes the whole stream. Lines that are not JSON events (a test
// binary can write around test2json) are printed as they are.
func (s *summary) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		raw, err := br.ReadBytes('\n')
		if len(raw) > 0 {
			s.handleLine(raw)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s *summary) handleLine(raw []byte) {
	trimmed := strings.TrimSpace(string(raw))
	if trimmed == "" {
		return
	}
	var e event
	if !strings.HasPrefix(trimmed, "{") || json.Unmarshal([]byte(trimmed), &e) != nil || e.Action == "" {
		fmt.Fprintln(s.out, strings.TrimRight(string(raw), "\n"))
		return
	}
	s.handle(e)
}

func (s *summary) pkg(name string) *pkgState {
	p, ok := s.pkgs[name]
	if !ok {
		p = &pkgState{tests: map[string]*topTest{}}
		s.pkgs[name] = p
		s.pkgOrder = append(s.pkgOrder, name)
	}
	return p
}

func topName(test string) string {
	if i := strings.IndexByte(test, '/'); i >= 0 {
		return test[:i]
	}
	return test
}

func (s *summary) handle(e event) {
	switch e.Action {
	case "build-output":
		s.buildOutput[e.ImportPath] = append(s.buildOutput[e.ImportPath], e.Output)
		if s.verbose {
			fmt.Fprint(s.out, e.Output)
			s.buildShown[e.ImportPath] = true
		}
		return
	case "build-fail":
		s.buildFailed[e.ImportPath] = true
		return
	}
	if e.Package == "" {
		return
	}
	p := s.pkg(e.Package)
	if e.Test != "" {
		s.handleTest(e, p)
		return
	}
	switch e.Action {
	case "output":
		p.output = append(p.output, e.Output)
		if s.verbose {
			fmt.Fprint(s.out, e.Output)
		}
	case "pass", "skip":
		p.done = true
		if !s.verbose {
			s.printPackageLine(p, e.Package)
		}
	case "fail":
		p.done = true
		s.packageFailed(e, p)
	}
}

func (s *summary) handleTest(e event, p *pkgState) {
	top := topName(e.Test)
	t, ok := p.tests[top]
	if !ok {
		t = &topTest{}
		p.tests[top] = t
	}
	switch e.Action {
	case "output":
		if s.verbose {
			fmt.Fprint(s.out, e.Output)
		}
		if !isFraming(e.Output) {
			t.lines = append(t.lines, line{test: e.Test, text: e.Output})
		}
	case "pass":
		s.passed++
	case "skip":
		s.skipped++
		s.skips = append(s.skips, skip{pkg: e.Package, test: e.Test, reason: skipReason(t, e.Test)})
	case "fail":
		s.failed++
		p.failedTests++
		if t.failed == nil {
			t.failed = map[string]bool{}
		}
		t.failed[e.Test] = true
		s.failedNames = append(s.failedNames, e.Package+" "+e.Test)
	}
	if e.Test == top && (e.Action == "pass" || e.Action == "skip" || e.Action == "fail") {
		if len(t.failed) > 0 && !s.verbose {
			s.printTest(t, t.failed)
		}
		delete(p.tests, top)
	}
}

// isFraming reports whether an output line only marks where a test runs,
// pauses or resumes; the summary groups output by test, so they add nothing.
func isFraming(text string) bool {
	for _, prefix := range []string{"=== RUN ", "=== PAUSE ", "=== CONT ", "=== NAME "} {
		if strings.HasPrefix(text, prefix) {
			return true
		}
	}
	return false
}

// skipReason is what a skipped test logged, without its "--- SKIP" line.
func skipReason(t *topTest, test string) string {
	var parts []string
	for _, l := range t.lines {
		if l.test != test {
			continue
		}
		text := strings.TrimSpace(l.text)
		if text == "" || strings.HasPrefix(text, "--- SKIP") {
			continue
		}
		parts = append(parts, text)
	}
	return strings.Join(parts, " | ")
}

// printTest prints the buffered output of the tests in only, or of every
// test when only is nil.
func (s *summary) printTest(t *topTest, only map[string]bool) {
	for _, l := range t.lines {
		if only != nil && !only[l.test] {
			continue
		}
		fmt.Fprint(s.out, l.text)
		if !strings.HasSuffix(l.text, "\n") {
			fmt.Fprintln(s.out)
		}
	}
}

// printPackageLine prints the package's closing line ("ok  ...", "?   ...")
// as go test prints it.
func (s *summary) printPackageLine(p *pkgState, name string) {
	for i := len(p.output) - 1; i >= 0; i-- {
		text := p.output[i]
		if strings.HasPrefix(text, "ok  ") || strings.HasPrefix(text, "?   ") {
			fmt.Fprint(s.out, text)
			return
		}
	}
	fmt.Fprintf(s.out, "ok  \t%s\n", name)
}

func (s *summary) packageFailed(e event, p *pkgState) {
	if e.FailedBuild != "" {
		s.showBuild(e.FailedBuild)
	}
	if s.verbose {
		// Everything was printed as it arrived.
		clear(p.tests)
		s.countPackageFailure(e, p)
		return
	}
	// Tests still open when the package failed (a timeout, a crash in
	// another goroutine) have output worth seeing.
	names := make([]string, 0, len(p.tests))
	for name := range p.tests {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := p.tests[name]
		if len(t.lines) > 0 {
			fmt.Fprintf(s.out, "--- %s did not finish:\n", name)
			s.printTest(t, nil)
		}
		delete(p.tests, name)
	}
	for _, text := range p.output {
		if text == "PASS\n" {
			continue
		}
		fmt.Fprint(s.out, text)
		if !strings.HasSuffix(text, "\n") {
			fmt.Fprintln(s.out)
		}
	}
	s.countPackageFailure(e, p)
}

// countPackageFailure counts a failed package as one failed test when no
// test of it failed: a build error or a crash must not read "0 failed".
func (s *summary) countPackageFailure(e event, p *pkgState) {
	if p.failedTests == 0 {
		s.failed++
		why := "failed outside any test"
		if e.FailedBuild != "" {
			why = "build failed"
			for _, text := range p.output {
				if strings.Contains(text, "[setup failed]") {
					why = "setup failed"
				}
			}
		}
		s.failedNames = append(s.failedNames, e.Package+" ["+why+"]")
	}
}

func (s *summary) showBuild(importPath string) {
	if s.buildShown[importPath] {
		return
	}
	s.buildShown[importPath] = true
	for _, text := range s.buildOutput[importPath] {
		fmt.Fprint(s.out, text)
	}
}

// finish reports what is left, prints the closing line and returns the
// exit status.
func (s *summary) finish() int {
	// Build failures that no package event claimed.
	var orphans []string
	for ip := range s.buildFailed {
		if !s.buildShown[ip] {
			orphans = append(orphans, ip)
		}
	}
	sort.Strings(orphans)
	for _, ip := range orphans {
		s.showBuild(ip)
		s.failed++
		s.failedNames = append(s.failedNames, ip+" [build failed]")
	}
	// Packages whose binary never reported an end: go test was killed.
	for _, name := range s.pkgOrder {
		p := s.pkgs[name]
		if p.done {
			continue
		}
		if !s.verbose {
			for _, text := range p.output {
				fmt.Fprint(s.out, text)
			}
		}
		fmt.Fprintf(s.out, "FAIL\t%s [no result: go test ended before the package finished]\n", name)
		s.failed++
		s.failedNames = append(s.failedNames, name+" [unfinished]")
	}

	fail := s.failed > 0
	if len(s.skips) > 0 {
		fmt.Fprintf(s.out, "\nSkipped tests (%d):\n", len(s.skips))
		for _, sk := range s.skips {
			if sk.reason != "" {
				fmt.Fprintf(s.out, "    SKIP %s %s: %s\n", sk.pkg, sk.test, sk.reason)
			} else {
				fmt.Fprintf(s.out, "    SKIP %s %s\n", sk.pkg, sk.test)
			}
		}
		if s.noSkip {
			fmt.Fprintln(s.out, "Skipped tests fail this run (CI is set or --no-skip was given): every test must run.")
			fail = true
		}
	}
	if len(s.failedNames) > 0 {
		fmt.Fprintf(s.out, "\nFailed (%d):\n", len(s.failedNames))
		for _, name := range s.failedNames {
			fmt.Fprintf(s.out, "    FAIL %s\n", name)
		}
	}
	switch {
	case s.goStatus == -1:
		fmt.Fprintln(s.out, "\ngo test's exit status is unknown; counting the run as failed.")
		fail = true
	case s.goStatus != 0:
		fmt.Fprintf(s.out, "\ngo test exited with status %d.\n", s.goStatus)
		fail = true
	}
	if s.passed+s.failed+s.skipped == 0 {
		fmt.Fprintln(s.out, "\nNo test ran.")
	}
	fmt.Fprintln(s.out, "\nCounts: tests and subtests alike; a package that fails outside any test counts as one failure.")
	fmt.Fprintf(s.out, "%d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
	if fail {
		return 1
	}
	return 0
}
