package audit

import (
	"net"
	"net/http"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/token"
)

// StatusWriter remembers the HTTP status a handler answered, which an
// Event records (and request metrics count): wrap the ResponseWriter,
// serve, then read Status (200 when the handler wrote a body without a
// status, 0 when it wrote nothing).
type StatusWriter struct {
	http.ResponseWriter
	Status int
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Answered is the Event of a request a token made, as far as every API
// tells it alike: when, who (the client, the user — the fhirUser, else the
// token's subject — the patient in context, the practices), from where
// (the caller's address without its port) and the status answered (200
// when nothing was written). The API fills in what was done.
func Answered(r *http.Request, c *token.AccessClaims, status int) Event {
	e := Event{
		Time: time.Now(), ClientID: c.ClientID, User: c.FHIRUser, UserKind: c.UserKind, Patient: c.Patient,
		Practices: c.Practices, Status: status, Source: r.RemoteAddr,
	}
	if e.User == "" {
		e.User = c.Subject
	}
	if e.Status == 0 {
		e.Status = http.StatusOK
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		e.Source = host
	}
	return e
}
