// Package stage helps the in-memory read models apply a batch atomically:
// they fold events into working copies of their rows and swap the copies
// in only when the whole batch succeeded.
package stage

import "github.com/google/uuid"

// Row returns the working copy of row id: the one staged in work, else a
// copy of the stored one, else a new zero row; it is staged in work.
func Row[T any](work, stored map[uuid.UUID]*T, id uuid.UUID) *T {
	if r := work[id]; r != nil {
		return r
	}
	r := new(T)
	if old := stored[id]; old != nil {
		*r = *old
	}
	work[id] = r
	return r
}
