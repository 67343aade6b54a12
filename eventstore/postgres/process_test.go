package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
)

// The environment that turns this test binary into a worker of
// TestAppendTwoProcesses.
const (
	envWorkerURL    = "BOOKING_ES_WORKER_URL"
	envWorkerName   = "BOOKING_ES_WORKER_NAME"
	envWorkerStream = "BOOKING_ES_WORKER_STREAM"
	envWorkerStart  = "BOOKING_ES_WORKER_START"
	envWorkerTarget = "BOOKING_ES_WORKER_TARGET"
	resultPrefix    = "WORKER-RESULT "
)

type workerResult struct {
	Name      string `json:"name"`
	Wins      int    `json:"wins"`
	Conflicts int    `json:"conflicts"`
}

// TestAppendTwoProcesses runs two OS processes (this test binary, started
// again as workers) that race for the same versions of one stream in one
// database. Each appends with the version it believes current and, on a
// conflict, moves to the actual version the error reports. At the end the
// stream's versions are consecutive, each won by exactly one process, and
// the losers counted conflicts.
func TestAppendTwoProcesses(t *testing.T) {
	if os.Getenv(envWorkerURL) != "" {
		runWorker(t)
		return
	}
	t.Parallel()
	const target = 200
	s, url := mustOpen(t, postgres.Config{})
	stream := "booking-" + uuid.NewString()
	start := time.Now().Add(2 * time.Second).UnixNano()

	type proc struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	procs := make([]*proc, 2)
	for i := range procs {
		p := &proc{cmd: exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestAppendTwoProcesses$", "-test.count=1", "-test.v")}
		p.cmd.Env = append(os.Environ(),
			envWorkerURL+"="+url,
			envWorkerName+"="+fmt.Sprintf("w%d", i),
			envWorkerStream+"="+stream,
			envWorkerStart+"="+strconv.FormatInt(start, 10),
			envWorkerTarget+"="+strconv.Itoa(target),
		)
		p.cmd.Stdout = &p.out
		p.cmd.Stderr = &p.out
		require.NoError(t, p.cmd.Start())
		procs[i] = p
	}
	results := map[string]workerResult{}
	for _, p := range procs {
		err := p.cmd.Wait()
		require.NoError(t, err, "worker output:\n%s", p.out.String())
		found := false
		sc := bufio.NewScanner(&p.out)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), resultPrefix); ok {
				var r workerResult
				require.NoError(t, json.Unmarshal([]byte(line), &r))
				results[r.Name] = r
				found = true
			}
		}
		require.True(t, found, "worker printed no result")
	}
	require.Len(t, results, 2)

	evs, err := s.Load(t.Context(), stream, 0)
	require.NoError(t, err)
	require.Len(t, evs, target)
	byWorker := map[string]int{}
	for i, e := range evs {
		require.Equal(t, int64(i+1), e.StreamVersion)
		var d struct {
			Worker  string `json:"worker"`
			Version int64  `json:"version"`
		}
		require.NoError(t, json.Unmarshal(e.Data, &d))
		require.Equal(t, e.StreamVersion, d.Version, "the winner wrote the version it expected to write")
		byWorker[d.Worker]++
	}
	conflicts := 0
	for name, r := range results {
		require.Equal(t, r.Wins, byWorker[name], "worker %s's wins are its events", name)
		conflicts += r.Conflicts
	}
	require.Equal(t, target, results["w0"].Wins+results["w1"].Wins)
	require.Positive(t, conflicts, "the processes never raced: %+v", results)
	t.Logf("two processes: %+v", results)

	report, err := s.Verify(t.Context(), stream, uuid.Nil)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report.Breaks)
}

// runWorker is the body of one worker process.
func runWorker(t *testing.T) {
	name, stream := os.Getenv(envWorkerName), os.Getenv(envWorkerStream)
	startNano, err := strconv.ParseInt(os.Getenv(envWorkerStart), 10, 64)
	require.NoError(t, err)
	target, err := strconv.ParseInt(os.Getenv(envWorkerTarget), 10, 64)
	require.NoError(t, err)
	s, err := postgres.Open(context.Background(), os.Getenv(envWorkerURL), postgres.Config{MaxConns: 2})
	require.NoError(t, err)
	defer s.Close()

	time.Sleep(time.Until(time.Unix(0, startNano)))
	r := workerResult{Name: name}
	var version int64
	for version < target {
		data := fmt.Sprintf(`{"worker":%q,"version":%d}`, name, version+1)
		_, err := s.Append(t.Context(), eventstore.StreamAppend{StreamID: stream, Expected: eventstore.Exact(version),
			Events: []eventstore.EventData{{ID: uuid.New(), Type: "booking.updated", Version: 1, Data: json.RawMessage(data)}}})
		var vc *eventstore.VersionConflictError
		switch {
		case err == nil:
			r.Wins++
			version++
		case errors.As(err, &vc):
			r.Conflicts++
			version = vc.Actual
		default:
			require.NoError(t, err)
		}
		// A client does some work between commands; without it the
		// faster process tends to win every round.
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	fmt.Println(resultPrefix + string(b))
}
