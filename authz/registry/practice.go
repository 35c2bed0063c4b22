package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Practice is a site whose data the platform holds (a tenant). Its PIN
// identifies it everywhere: in resources' owning practice, users'
// memberships and clients' consents.
type Practice struct {
	PIN     string    `json:"pin"` // upper case, 4–12 letters and digits
	Name    string    `json:"name"`
	Status  Status    `json:"status"`
	Created time.Time `json:"created"`
}

// practiceDoc is a Practice as stored; its record id is the PIN, which
// makes PINs unique.
type practiceDoc struct {
	Record string `json:"record"` // "practice"
	Practice
}

// PracticeSpec is what CreatePractice needs.
type PracticeSpec struct {
	Name string
	// PIN is 4–12 letters and digits; case does not matter (it is kept in
	// upper case).
	PIN string
	// Status is active when empty.
	Status Status
}

// CreatePractice stores a new practice. It returns a *ValidationError
// (fields name, pin, status) for bad input and ErrExists when the PIN is
// taken.
func (r *Registry) CreatePractice(ctx context.Context, spec PracticeSpec) (Practice, error) {
	p := problems{ValidationError{What: "practice"}}
	pin := NormalizePIN(spec.PIN)
	if msg := pinProblem(pin); msg != "" {
		p.add("pin", "%s", msg)
	}
	name := checkName(&p, "name", spec.Name)
	status := checkStatus(&p, spec.Status)
	if err := p.err(); err != nil {
		return Practice{}, err
	}
	pr := Practice{PIN: pin, Name: name, Status: status, Created: r.now()}
	if err := create(ctx, r.practices, pin, practiceDoc{Record: "practice", Practice: pr}); err != nil {
		if errors.Is(err, ErrExists) {
			return Practice{}, fmt.Errorf("%w: a practice with PIN %s", ErrExists, pin)
		}
		return Practice{}, err
	}
	return pr, nil
}

// GetPractice returns the practice with a PIN (in any case); ErrNotFound
// if there is none.
func (r *Registry) GetPractice(ctx context.Context, pin string) (Practice, error) {
	d, _, err := get[practiceDoc](ctx, r.practices, NormalizePIN(pin))
	return d.Practice, err
}

// ListPractices returns every practice, by PIN.
func (r *Registry) ListPractices(ctx context.Context) ([]Practice, error) {
	docs, err := find[practiceDoc](ctx, r.practices, "record", "practice")
	out := make([]Practice, len(docs))
	for i, d := range docs {
		out[i] = d.Practice
	}
	return out, err
}

// SetPracticeStatus changes a practice's status (a no-op when it already
// has it) and returns the practice.
func (r *Registry) SetPracticeStatus(ctx context.Context, pin string, s Status) (Practice, error) {
	d, err := update(ctx, r.practices, NormalizePIN(pin), func(d *practiceDoc) (bool, error) { return setStatus("practice", s, &d.Status) })
	return d.Practice, err
}

// NormalizePIN is the form PINs are kept and compared in.
func NormalizePIN(pin string) string { return strings.ToUpper(strings.TrimSpace(pin)) }

func pinProblem(pin string) string {
	if len(pin) < 4 || len(pin) > 12 {
		return "must be 4 to 12 letters and digits"
	}
	for _, c := range pin {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return "must be 4 to 12 letters and digits"
		}
	}
	return ""
}

// checkPractices checks that each PIN names an existing, unsuspended
// practice, and returns them normalized without duplicates.
func (r *Registry) checkPractices(ctx context.Context, p *problems, field string, pins []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, raw := range pins {
		pin := NormalizePIN(raw)
		if seen[pin] {
			continue
		}
		seen[pin] = true
		if msg := pinProblem(pin); msg != "" {
			p.add(field, "%q %s", raw, msg)
			continue
		}
		pr, err := r.GetPractice(ctx, pin)
		switch {
		case errors.Is(err, ErrNotFound):
			p.add(field, "no practice has PIN %s", pin)
			continue
		case err != nil:
			return nil, err
		case pr.Status == StatusSuspended:
			p.add(field, "practice %s is suspended", pin)
			continue
		}
		out = append(out, pin)
	}
	return out, nil
}

const maxNameLen = 200

// checkName trims a display name and checks it is present, short and
// printable.
func checkName(p *problems, field, name string) string {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		p.add(field, "is required")
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0:
		p.add(field, "must be printable text")
	case utf8.RuneCountInString(name) > maxNameLen:
		p.add(field, "must be at most %d characters", maxNameLen)
	}
	return name
}

func checkStatus(p *problems, s Status) Status {
	if s == "" {
		return StatusActive
	}
	if !s.valid() {
		p.add("status", "must be pending, active or suspended")
	}
	return s
}
