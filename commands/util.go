package commands

import (
	"errors"

	"github.com/bookingengine/booking/domain"
)

func isNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }
