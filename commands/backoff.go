package commands

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff sleeps a short, jittered, growing time before the next attempt.
func backoff(ctx context.Context, attempt int) {
	base := time.Duration(1<<min(attempt, 6)) * time.Millisecond
	d := base/2 + rand.N(base)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
