package registry

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// HashSecret returns the argon2id hash (PHC string) of a password or
// secret, with the registry's cost: for other stores of credentials (the
// developer portal's accounts) that want the same hashing.
func (r *Registry) HashSecret(ctx context.Context, secret string) (string, error) {
	if len(secret) > maxSecretLen {
		return "", fmt.Errorf("%w: secret longer than %d bytes", ErrInvalid, maxSecretLen)
	}
	return r.hasher.hash(ctx, secret)
}

// VerifySecret reports whether secret matches a hash made by HashSecret.
// An empty or malformed hash is checked against a dummy one, so a refusal
// costs the same whether or not there was a hash.
func (r *Registry) VerifySecret(ctx context.Context, secret, hash string) (bool, error) {
	return r.hasher.verify(ctx, secret, hash)
}

// CheckURL checks a redirect, launch or JWKS URL as client registration
// does: absolute, https, a public host, no credentials, no fragment (in
// development mode http and loopback or private hosts too). It returns
// the problem in words, or "" when the URL is acceptable.
func CheckURL(raw string, dev bool) string {
	p := problems{}
	checkURL(&p, "url", raw, dev)
	if len(p.Problems) == 0 {
		return ""
	}
	return p.Problems[0].Message
}

// SetClientPractices replaces the practices that consented to a client
// (PINs of existing, unsuspended practices; a *ValidationError on the
// field practices otherwise) and returns the client. Tokens issued later
// reach the data of these practices only.
func (r *Registry) SetClientPractices(ctx context.Context, id string, pins []string) (Client, error) {
	p := problems{ValidationError{What: "client"}}
	checked, err := r.checkPractices(ctx, &p, "practices", pins)
	if err != nil {
		return Client{}, err
	}
	if err := p.err(); err != nil {
		return Client{}, err
	}
	d, err := update(ctx, r.clients, id, func(d *clientDoc) (bool, error) {
		if slices.Equal(d.Practices, checked) {
			return false, nil
		}
		d.Practices = checked
		return true, nil
	})
	return d.Client, err
}

// RotateClientSecret gives a confidential-symmetric client a new secret
// and returns it (shown once; only its hash is kept). The secret it had
// keeps authenticating for grace (none when grace is zero), so that a
// deployment can switch without an outage. A client without a secret is
// a *ValidationError on the field secret.
func (r *Registry) RotateClientSecret(ctx context.Context, id string, grace time.Duration) (string, error) {
	secret := randomToken(secretBytes)
	hash, err := r.hasher.hash(ctx, secret)
	if err != nil {
		return "", err
	}
	now := r.now()
	_, err = update(ctx, r.clients, id, func(d *clientDoc) (bool, error) {
		if d.Type != TypeConfidentialSymmetric {
			return false, &ValidationError{What: "client", Problems: []FieldError{{Field: "secret", Message: "only clients with a shared secret have one to rotate"}}}
		}
		d.OldSecretHash, d.OldSecretExp = "", time.Time{}
		if grace > 0 && d.SecretHash != "" {
			d.OldSecretHash, d.OldSecretExp = d.SecretHash, now.Add(grace)
		}
		d.SecretHash = hash
		return true, nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// RevokeClientSecret removes a client's secret, and the previous one
// still in its grace period: nothing authenticates as the client until
// RotateClientSecret gives it a new one.
func (r *Registry) RevokeClientSecret(ctx context.Context, id string) (Client, error) {
	d, err := update(ctx, r.clients, id, func(d *clientDoc) (bool, error) {
		if d.SecretHash == "" && d.OldSecretHash == "" {
			return false, nil
		}
		d.SecretHash, d.OldSecretHash, d.OldSecretExp = "", "", time.Time{}
		return true, nil
	})
	return d.Client, err
}
