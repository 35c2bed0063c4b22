package registry

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fhirgraph/fhirgraph/store"
)

// UserKind says who a user is and what they link to.
type UserKind string

const (
	// UserPatient is linked to one Patient resource and sees its data.
	UserPatient UserKind = "patient"
	// UserPractitioner is linked to a Practitioner resource and belongs to
	// one or more practices.
	UserPractitioner UserKind = "practitioner"
	// UserStaff belongs to one or more practices without a clinical role.
	UserStaff UserKind = "staff"
)

// User is someone who logs in at the authorization server.
type User struct {
	Username     string    `json:"username"` // lower case; the record id
	Kind         UserKind  `json:"kind"`
	Patient      string    `json:"patient,omitempty"`      // Patient id (patient users)
	Practitioner string    `json:"practitioner,omitempty"` // Practitioner id (practitioners)
	Practices    []string  `json:"practices,omitempty"`    // PINs (practitioners and staff)
	Status       Status    `json:"status"`
	Created      time.Time `json:"created"`
}

// userDoc is a User as stored; its record id is the username, which makes
// usernames unique.
type userDoc struct {
	Record string `json:"record"` // "user"
	User
	PasswordHash string `json:"password_hash"`
}

// UserSpec is what CreateUser needs.
type UserSpec struct {
	Username string // 3–64 of a-z 0-9 . _ @ + -, case-insensitive
	Password string // 8–256 bytes of printable text
	Kind     UserKind
	// Patient is the Patient id of a patient user; Practitioner the
	// Practitioner id of a practitioner. Both must exist in the store.
	Patient, Practitioner string
	// Practices are the PINs of existing practices, one or more for
	// practitioners and staff, none for patients.
	Practices []string
	// Status is active when empty.
	Status Status
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@+-]{2,63}$`)

// fhirIDRE is the R4 id type.
var fhirIDRE = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)

const minPasswordLen = 8

// NormalizeUsername is the form usernames are kept and compared in.
func NormalizeUsername(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

// CreateUser stores a new user with a hash of the password. It returns a
// *ValidationError (fields username, password, kind, patient,
// practitioner, practices, status) for bad input and ErrExists when the
// username is taken.
func (r *Registry) CreateUser(ctx context.Context, spec UserSpec) (User, error) {
	p := problems{ValidationError{What: "user"}}
	u := User{Username: NormalizeUsername(spec.Username), Kind: spec.Kind, Status: checkStatus(&p, spec.Status), Created: r.now()}
	if !usernameRE.MatchString(u.Username) {
		p.add("username", "must be 3 to 64 letters, digits and . _ @ + -, starting with a letter or digit")
	}
	switch pw := spec.Password; {
	case len(pw) < minPasswordLen || len(pw) > maxSecretLen:
		p.add("password", "must be %d to %d bytes long", minPasswordLen, maxSecretLen)
	case !utf8.ValidString(pw) || strings.IndexFunc(pw, unicode.IsControl) >= 0:
		p.add("password", "must be printable text")
	case NormalizeUsername(pw) == u.Username:
		p.add("password", "must not be the username")
	}
	var err error
	switch spec.Kind {
	case UserPatient:
		u.Patient = r.checkLink(ctx, &p, "patient", "Patient", spec.Patient, &err)
		if spec.Practitioner != "" {
			p.add("practitioner", "only practitioner users link to a Practitioner")
		}
		if len(spec.Practices) > 0 {
			p.add("practices", "patient users belong to no practice")
		}
	case UserPractitioner, UserStaff:
		if spec.Kind == UserPractitioner {
			u.Practitioner = r.checkLink(ctx, &p, "practitioner", "Practitioner", spec.Practitioner, &err)
		} else if spec.Practitioner != "" {
			p.add("practitioner", "only practitioner users link to a Practitioner")
		}
		if spec.Patient != "" {
			p.add("patient", "only patient users link to a Patient")
		}
		if len(spec.Practices) == 0 {
			p.add("practices", "%s users belong to at least one practice", spec.Kind)
		} else if err == nil {
			u.Practices, err = r.checkPractices(ctx, &p, "practices", spec.Practices)
		}
	default:
		p.add("kind", "must be patient, practitioner or staff")
	}
	if err != nil {
		return User{}, err
	}
	if err := p.err(); err != nil {
		return User{}, err
	}
	hash, err := r.hasher.hash(ctx, spec.Password)
	if err != nil {
		return User{}, err
	}
	if err := create(ctx, r.users, u.Username, userDoc{Record: "user", User: u, PasswordHash: hash}); err != nil {
		if errors.Is(err, ErrExists) {
			return User{}, fmt.Errorf("%w: a user named %s", ErrExists, u.Username)
		}
		return User{}, err
	}
	return u, nil
}

// checkLink checks that typ/id is a live resource, and returns id. A store
// failure is left in *err.
func (r *Registry) checkLink(ctx context.Context, p *problems, field, typ, id string, err *error) string {
	switch {
	case id == "":
		p.add(field, "is required for %s users", field)
	case !fhirIDRE.MatchString(id):
		p.add(field, "must be a resource id (1 to 64 letters, digits, - and .)")
	case *err == nil:
		_, e := r.st.Read(ctx, typ, id)
		if e != nil && !errors.Is(e, ErrNotFound) && !errors.Is(e, store.ErrGone) {
			*err = e
		} else if e != nil {
			p.add(field, "no %s/%s in the store", typ, id)
		}
	}
	return id
}

// Login checks a username and password and returns the user. Every refusal
// — unknown user, wrong password, malformed input — is ErrBadCredentials
// after one full hash evaluation, so neither the answer nor its timing
// tells whether the user exists. ErrNotActive (with the user) is returned
// only to someone who gave the right password.
func (r *Registry) Login(ctx context.Context, username, password string) (User, error) {
	var d userDoc
	err := error(ErrNotFound)
	if name := NormalizeUsername(username); usernameRE.MatchString(name) {
		d, _, err = get[userDoc](ctx, r.users, name)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, err
	}
	ok, verr := r.hasher.verify(ctx, password, d.PasswordHash) // "" when unknown: the dummy hash
	if verr != nil {
		return User{}, verr
	}
	if err != nil || !ok {
		return User{}, ErrBadCredentials
	}
	if d.Status != StatusActive {
		return d.User, fmt.Errorf("user %s is %s: %w", d.Username, d.Status, ErrNotActive)
	}
	return d.User, nil
}

// GetUser returns the user with a username (in any case); ErrNotFound if
// there is none.
func (r *Registry) GetUser(ctx context.Context, username string) (User, error) {
	d, _, err := get[userDoc](ctx, r.users, NormalizeUsername(username))
	return d.User, err
}

// ListUsers returns every user, by username.
func (r *Registry) ListUsers(ctx context.Context) ([]User, error) {
	return r.findUsers(ctx, "record", "user")
}

// UsersByPatient returns the users linked to Patient/id.
func (r *Registry) UsersByPatient(ctx context.Context, id string) ([]User, error) {
	return r.findUsers(ctx, "patient", id)
}

// UsersByPractitioner returns the users linked to Practitioner/id.
func (r *Registry) UsersByPractitioner(ctx context.Context, id string) ([]User, error) {
	return r.findUsers(ctx, "practitioner", id)
}

// UsersByPractice returns the members of the practice with a PIN.
func (r *Registry) UsersByPractice(ctx context.Context, pin string) ([]User, error) {
	return r.findUsers(ctx, "practices", NormalizePIN(pin))
}

func (r *Registry) findUsers(ctx context.Context, key, value string) ([]User, error) {
	docs, err := find[userDoc](ctx, r.users, key, value)
	out := make([]User, len(docs))
	for i, d := range docs {
		out[i] = d.User
	}
	return out, err
}

// SetUserStatus changes a user's status (a no-op when it already has it)
// and returns the user.
func (r *Registry) SetUserStatus(ctx context.Context, username string, s Status) (User, error) {
	d, err := update(ctx, r.users, NormalizeUsername(username), func(d *userDoc) (bool, error) { return setStatus("user", s, &d.Status) })
	return d.User, err
}
