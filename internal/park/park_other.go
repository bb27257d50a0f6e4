//go:build !linux

package park

import (
	"errors"
	"syscall"
	"time"
)

// Parker is unsupported off Linux: New reports errors.ErrUnsupported.
type Parker struct{}

// Spot is a connection's place in a Parker.
type Spot struct{}

// New reports errors.ErrUnsupported.
func New() (*Parker, error) { return nil, errors.ErrUnsupported }

// Park reports errors.ErrUnsupported: the caller waits itself.
func (p *Parker) Park(*Spot, syscall.RawConn, time.Time, func(bool)) error {
	return errors.ErrUnsupported
}

// Cancel reports false: nothing is ever parked.
func (p *Parker) Cancel(*Spot) bool { return false }

// Len reports 0.
func (p *Parker) Len() int { return 0 }

// Close does nothing.
func (p *Parker) Close() error { return nil }
