package httphead

import (
	"net/http"
	"sync/atomic"
	"time"
)

// dateCache holds the Date field's value for one second.
type dateCache struct {
	sec int64
	val string
}

var currentDate atomic.Pointer[dateCache]

// Date returns the current time as a Date field's value (http.TimeFormat),
// formatted once a second for the HTTP/1.x and HTTP/2 servers' responses.
func Date() string {
	now := time.Now()
	if d := currentDate.Load(); d != nil && d.sec == now.Unix() {
		return d.val
	}
	d := &dateCache{sec: now.Unix(), val: now.UTC().Format(http.TimeFormat)}
	currentDate.Store(d)
	return d.val
}
