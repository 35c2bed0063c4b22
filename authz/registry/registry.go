// Package registry keeps the platform's principals as store records: OAuth
// clients (SMART apps and backend services), users who log in at the
// authorization server (patients, practitioners, staff) and practices (the
// sites data belongs to, each with a PIN).
//
// Creation validates everything and reports problems per input field
// (*ValidationError); a client's secret is generated here and returned
// once, and secrets and passwords are kept only as argon2id hashes. Updates
// are compare-and-set loops on the record's revision, so concurrent
// writers on any number of servers never lose each other's changes.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// Errors of the registry, tested with errors.Is. Not-found and exists are
// the store's own, so callers that map store errors map these too.
var (
	// ErrNotFound: no client, user or practice with that id.
	ErrNotFound = store.ErrNotFound
	// ErrExists: a user with that username or a practice with that PIN
	// already exists.
	ErrExists = store.ErrExists
	// ErrInvalid is what every *ValidationError wraps.
	ErrInvalid = store.ErrInvalid
	// ErrBadCredentials: unknown client or user, or the wrong secret or
	// password; which one is deliberately not said.
	ErrBadCredentials = errors.New("invalid credentials")
	// ErrNotActive: the credentials are right but the client or user is
	// pending or suspended.
	ErrNotActive = errors.New("not active")
)

// Status is the life-cycle state of a client, user or practice. Only active
// ones may authenticate.
type Status string

const (
	StatusPending   Status = "pending"
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

func (s Status) valid() bool {
	return s == StatusPending || s == StatusActive || s == StatusSuspended
}

// Options configure a Registry; the zero value is the production setting.
type Options struct {
	// KDF is the argon2id cost of new hashes; zero (or out of bounds)
	// means DefaultKDF.
	KDF KDF
	// ValidateScope, when set, fully checks a client's scope string for
	// its SMART version ("v1" or "v2") — the hook for the SMART scope
	// parser. Without it only the syntax of RFC 6749 scope tokens and the
	// version are checked. Its error message is shown next to the field.
	ValidateScope func(scope, version string) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Registry is the store of clients, users and practices. It is safe for
// concurrent use.
type Registry struct {
	st                        store.Store
	clients, users, practices store.Collection
	hasher                    *hasher
	validateScope             func(scope, version string) error
	now                       func() time.Time
}

// Record collections and their declared keys. Every record carries its
// kind in "record", the key that lists a whole collection.
var (
	clientsDef   = store.CollectionDef{Name: "clients", Keys: []string{"record", "practices", "status"}}
	usersDef     = store.CollectionDef{Name: "users", Keys: []string{"record", "patient", "practitioner", "practices"}}
	practicesDef = store.CollectionDef{Name: "practices", Keys: []string{"record", "status"}}
)

// New returns the registry kept in st.
func New(st store.Store, opts Options) *Registry {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Registry{
		st:            st,
		clients:       st.Collection(clientsDef),
		users:         st.Collection(usersDef),
		practices:     st.Collection(practicesDef),
		hasher:        newHasher(opts.KDF),
		validateScope: opts.ValidateScope,
		now:           func() time.Time { return now().UTC().Truncate(time.Second) },
	}
}

// FieldError is one problem with one input field. Field is the field's
// name in the record's JSON (redirect_uris, scope, …), which the CLI maps
// to its flag and the portal to its form field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem found with an input. It never
// quotes a secret or password.
type ValidationError struct {
	What     string // "client", "user" or "practice"
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid %s: ", e.What)
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Field + ": " + p.Message)
	}
	return b.String()
}

// Unwrap makes every validation error ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// problems collects FieldErrors while an input is checked.
type problems struct{ ValidationError }

func (p *problems) add(field, format string, args ...any) {
	p.Problems = append(p.Problems, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (p *problems) has(field string) bool {
	for _, f := range p.Problems {
		if f.Field == field {
			return true
		}
	}
	return false
}

// err is nil when nothing was added.
func (p *problems) err() error {
	if len(p.Problems) == 0 {
		return nil
	}
	e := p.ValidationError
	return &e
}

// get reads and decodes one record.
func get[T any](ctx context.Context, c store.Collection, id string) (T, int64, error) {
	var v T
	if id == "" {
		return v, 0, fmt.Errorf("%w: empty id", ErrNotFound)
	}
	rec, err := c.Get(ctx, id)
	if err != nil {
		return v, 0, err
	}
	if err := json.Unmarshal(rec.Data, &v); err != nil {
		return v, 0, fmt.Errorf("registry: record %s: %w", id, err)
	}
	return v, rec.Rev, nil
}

// find decodes the records whose key field holds value, by id.
func find[T any](ctx context.Context, c store.Collection, key, value string) ([]T, error) {
	recs, err := c.Find(ctx, key, value)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(recs))
	for _, rec := range recs {
		var v T
		if err := json.Unmarshal(rec.Data, &v); err != nil {
			return nil, fmt.Errorf("registry: record %s: %w", rec.ID, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func create(ctx context.Context, c store.Collection, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.Create(ctx, store.Record{ID: id, Data: data})
	return err
}

// maxAttempts bounds a compare-and-set loop: each failed attempt means
// another writer succeeded, so running out means heavy contention.
const maxAttempts = 20

// update applies change to a record until its compare-and-set succeeds.
// change reports whether it changed anything; when not, nothing is
// written.
func update[T any](ctx context.Context, c store.Collection, id string, change func(*T) (bool, error)) (T, error) {
	var zero T
	for range maxAttempts {
		v, rev, err := get[T](ctx, c, id)
		if err != nil {
			return zero, err
		}
		changed, err := change(&v)
		if err != nil || !changed {
			return v, err
		}
		data, err := json.Marshal(v)
		if err != nil {
			return zero, err
		}
		_, err = c.Update(ctx, store.Record{ID: id, Rev: rev, Data: data})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return v, err
	}
	return zero, fmt.Errorf("registry: %s changed by others %d times in a row: %w", id, maxAttempts, store.ErrConflict)
}

// setStatus is the change that puts a record's status at s.
func setStatus(what string, s Status, status *Status) (bool, error) {
	if !s.valid() {
		return false, &ValidationError{What: what, Problems: []FieldError{{Field: "status", Message: fmt.Sprintf("must be pending, active or suspended, not %q", s)}}}
	}
	if *status == s {
		return false, nil
	}
	*status = s
	return true, nil
}
