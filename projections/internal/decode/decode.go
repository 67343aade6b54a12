// Package decode gives the read models an event's payload as a domain
// event: the one the feed decoded ahead of time (projections.Event.Payload),
// else decoded now.
package decode

import (
	"fmt"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/projections"
)

// Event returns e's payload. Errors wrap domain.ErrUnknownEventType for a
// type this build does not know, or the JSON decoder's.
func Event(e projections.Event) (domain.Event, error) {
	if ev, ok := e.Payload.(domain.Event); ok && ev != nil {
		return ev, nil
	}
	ev, err := domain.UnmarshalEvent(e.Type, e.Data)
	if err != nil {
		return nil, fmt.Errorf("stream %s version %d: %w", e.StreamID, e.StreamVersion, err)
	}
	return ev, nil
}
