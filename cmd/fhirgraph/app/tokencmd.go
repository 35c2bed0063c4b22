package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/scope"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/store"
)

// tokenCmd is `fhirgraph token`: a development helper that mints an access
// token from the store's keyring for a FHIR base, without the OAuth flow,
// and prints it. Whoever can run it can read the store anyway.
func tokenCmd(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("token", e)
	var sf storeFlags
	sf.register(fs, e)
	var practices multiFlag
	scopes := fs.String("scope", "", `granted scopes, e.g. "system/*.rs" or "patient/*.rs"`)
	patientID := fs.String("patient", "", "the patient in context (patient/ scopes)")
	fhirUser := fs.String("fhir-user", "", "the user's FHIR resource, e.g. Practitioner/123 (a patient user's is Patient/ID)")
	userKind := fs.String("user-kind", "", "patient, practitioner or staff; none for a backend (system/) token")
	fs.Var(&practices, "practice", "PIN of a practice whose data the token reaches (repeatable; must exist)")
	lifetime := fs.Duration("lifetime", time.Hour, "the token's lifetime (at most 1h)")
	clientID := fs.String("client-id", "fhirgraph-cli", "the client the token is issued to")
	baseURL := baseURLFlag(fs, e, "public URL of the server the token is for, e.g. http://localhost:8080 (env FHIRGRAPH_BASE_URL; required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token takes no arguments, got %q", fs.Args())
	}
	if *baseURL == "" {
		return errors.New("token needs --base-url: the server's public URL, as serve prints it")
	}
	if _, err := scope.Parse(*scopes); err != nil || strings.TrimSpace(*scopes) == "" {
		return fmt.Errorf("--scope: %v", orElse(err, "at least one scope is required"))
	}
	switch policy.UserKind(*userKind) {
	case policy.NoUser, policy.Practitioner, policy.Staff:
	case policy.PatientUser:
		if *fhirUser == "" && *patientID != "" {
			*fhirUser = "Patient/" + *patientID
		}
		if !strings.HasPrefix(*fhirUser, "Patient/") {
			return errors.New("a patient user's token needs --fhir-user Patient/ID (or --patient ID)")
		}
	default:
		return fmt.Errorf("--user-kind %q: want patient, practitioner or staff", *userKind)
	}
	st, log, err := sf.openWithLog(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	pins, err := checkPractices(ctx, st, practices)
	if err != nil {
		return err
	}
	_, auth, err := newAuthority(st, fhirBase(*baseURL), log)
	if err != nil {
		return err
	}
	subject := *clientID
	if *fhirUser != "" {
		subject = *fhirUser
	}
	raw, _, err := auth.IssueAccess(ctx, token.AccessGrant{
		Subject: subject, ClientID: *clientID, Scope: *scopes, Patient: *patientID, FHIRUser: *fhirUser,
		Practices: pins, UserKind: *userKind, Lifetime: *lifetime,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, raw)
	return nil
}

func orElse(err error, msg string) string {
	if err != nil {
		return err.Error()
	}
	return msg
}

// checkPractices returns the practices' PINs normalized, after checking
// that each exists.
func checkPractices(ctx context.Context, st store.Store, pins []string) ([]string, error) {
	if len(pins) == 0 {
		return nil, nil
	}
	reg := registry.New(st, registry.Options{})
	out := make([]string, 0, len(pins))
	for _, pin := range pins {
		p, err := reg.GetPractice(ctx, pin)
		if errors.Is(err, registry.ErrNotFound) {
			return nil, fmt.Errorf("--practice %s: no such practice (create it with fhirgraph practice create)", pin)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p.PIN)
	}
	return out, nil
}

// newAuthority is the token authority of a FHIR base on the store's
// keyring: tokens name the FHIR base as both issuer and audience, so the
// server and the token command agree whatever their process.
func newAuthority(st store.Store, fhirBaseURL string, log *slog.Logger) (*token.Keyring, *token.Authority, error) {
	keys, err := token.NewKeyring(st, token.KeyringOptions{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	deny := token.NewDenylist(st, token.DenylistOptions{})
	auth, err := token.NewAuthority(keys, deny, token.AuthorityOptions{Issuer: fhirBaseURL, Audience: fhirBaseURL})
	return keys, auth, err
}

// newGuard is the APIs' guard for a FHIR base; it checks each token's
// client against the registry on the store (authz/standing.go).
func newGuard(st store.Store, auth *token.Authority, fhirBaseURL string) (*authz.Guard, error) {
	pol, err := policy.New()
	if err != nil {
		return nil, err
	}
	return authz.NewGuard(authz.GuardConfig{Authority: auth, Policy: pol, BaseURL: fhirBaseURL, Clients: registry.New(st, registry.Options{})})
}

// practicePIN checks the --practice of import and seed: "" for none, else
// the existing practice's PIN.
func practicePIN(ctx context.Context, st store.Store, pin string) (string, error) {
	if pin == "" {
		return "", nil
	}
	pins, err := checkPractices(ctx, st, []string{pin})
	if err != nil {
		return "", err
	}
	return pins[0], nil
}
