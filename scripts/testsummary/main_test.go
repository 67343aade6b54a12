package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The files in testdata are real `go test -json` output of go1.26 on a small
// module whose packages pass, skip, fail in a subtest, do not build, panic,
// and exit from TestMain.
func TestSummary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		file     string
		noSkip   bool
		goStatus int
		wantExit int
		wantLast string
		want     []string
		notWant  []string
	}{
		{
			name:     "all pass",
			file:     "pass.jsonl",
			wantExit: 0,
			wantLast: "1 passed, 0 failed, 0 skipped",
			want:     []string{"ok  \texample.com/jx/f\t"},
			notWant:  []string{"=== RUN", "--- PASS"},
		},
		{
			name:     "a pass with a non-zero go test status still fails",
			file:     "pass.jsonl",
			goStatus: 1,
			wantExit: 1,
			wantLast: "1 passed, 0 failed, 0 skipped",
			want:     []string{"go test exited with status 1."},
		},
		{
			name:     "an unknown go test status fails",
			file:     "pass.jsonl",
			goStatus: -1,
			wantExit: 1,
			want:     []string{"exit status is unknown"},
		},
		{
			name:     "skips are listed with their reason and allowed by default",
			file:     "skip.jsonl",
			wantExit: 0,
			wantLast: "0 passed, 0 failed, 1 skipped",
			want:     []string{"SKIP example.com/jx/a TestSkip: a_test.go:4: no server"},
		},
		{
			name:     "skips fail the run with -no-skip",
			file:     "skip.jsonl",
			noSkip:   true,
			wantExit: 1,
			wantLast: "0 passed, 0 failed, 1 skipped",
			want:     []string{"Skipped tests fail this run"},
		},
		{
			name:     "failures, build errors, panics and TestMain exits",
			file:     "mixed.jsonl",
			goStatus: 1,
			wantExit: 1,
			// TestOK, TestFail/sub1 pass; TestFail/sub3, TestFail, TestPanic
			// fail, and so do b (build) and e (TestMain) outside any test.
			wantLast: "2 passed, 5 failed, 2 skipped",
			want: []string{
				"a_test.go:5: boom",
				"--- FAIL: TestFail/sub3",
				"b_test.go:3:40: cannot use \"s\"",
				"FAIL\texample.com/jx/b [build failed]",
				"panic: kaboom",
				"exit status 3",
				"?   \texample.com/jx/c\t[no test files]",
				"FAIL example.com/jx/b [build failed]",
				"FAIL example.com/jx/e [failed outside any test]",
				"FAIL example.com/jx/a TestFail/sub3",
				"SKIP example.com/jx/a TestFail/sub2: a_test.go:5: subskip",
			},
			// Passing and skipped subtests of a failing test stay quiet.
			notWant: []string{"hello", "--- PASS: TestFail/sub1", "--- SKIP: TestFail/sub2"},
		},
		{
			name:     "a pattern that matches nothing fails",
			file:     "badpattern.jsonl",
			goStatus: 1,
			wantExit: 1,
			wantLast: "0 passed, 1 failed, 0 skipped",
			want:     []string{"lstat ./nonexist/: no such file or directory", "FAIL ./nonexist/... [setup failed]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			s := newSummary(&out, tt.noSkip)
			if err := s.read(bytes.NewReader(in)); err != nil {
				t.Fatal(err)
			}
			s.goStatus = tt.goStatus
			exit := s.finish()
			got := out.String()
			if exit != tt.wantExit {
				t.Errorf("exit = %d, want %d; output:\n%s", exit, tt.wantExit, got)
			}
			lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
			if tt.wantLast != "" && lines[len(lines)-1] != tt.wantLast {
				t.Errorf("last line = %q, want %q", lines[len(lines)-1], tt.wantLast)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("output has %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestVerbosePrintsEverythingOnce(t *testing.T) {
	t.Parallel()
	in, err := os.ReadFile(filepath.Join("testdata", "mixed.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s := newSummary(&out, false)
	s.verbose = true
	if err := s.read(bytes.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	s.goStatus = 1
	if exit := s.finish(); exit != 1 {
		t.Fatalf("exit = %d, want 1", exit)
	}
	got := out.String()
	for _, w := range []string{"=== RUN   TestOK", "a_test.go:3: hello", "--- PASS: TestFail/sub1", "b_test.go:3:40", "exit status 3"} {
		if n := strings.Count(got, w); n != 1 {
			t.Errorf("%q printed %d times, want once:\n%s", w, n, got)
		}
	}
	if !strings.HasSuffix(got, "2 passed, 5 failed, 2 skipped\n") {
		t.Errorf("unexpected closing line:\n%s", got)
	}
}

func TestNonJSONLinesPassThrough(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s := newSummary(&out, false)
	in := "plain text from a test binary\n{\"Action\":\"start\",\"Package\":\"p\"}\n{not json\n"
	if err := s.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, w := range []string{"plain text from a test binary\n", "{not json\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q: %q", w, got)
		}
	}
}

func TestUnfinishedPackageFails(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s := newSummary(&out, false)
	in := `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Test":"TestA"}
`
	if err := s.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if exit := s.finish(); exit != 1 {
		t.Fatalf("exit = %d, want 1:\n%s", exit, out.String())
	}
	if !strings.HasSuffix(out.String(), "1 passed, 1 failed, 0 skipped\n") {
		t.Fatalf("unexpected summary:\n%s", out.String())
	}
}

func TestReadStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]int{
		write("zero", "0\n"):          0,
		write("two", "2\n"):           2,
		write("empty", ""):            -1,
		write("junk", "x"):            -1,
		filepath.Join(dir, "missing"): -1,
	}
	for path, want := range cases {
		if got := readStatus(path); got != want {
			t.Errorf("readStatus(%s) = %d, want %d", filepath.Base(path), got, want)
		}
	}
}
