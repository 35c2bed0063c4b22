package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Client assertions are signed RS384 or ES384 (SMART App Launch 2.0,
// client-confidential-asymmetric): the only algorithms accepted, each
// with the one key type it fits.
const (
	algRS384 = "RS384"
	algES384 = "ES384"
)

var assertionAlgs = []string{algRS384, algES384}

// minRSABits is the smallest RSA key a client may sign with.
const minRSABits = 2048

// errNoUsableKey: a JWK Set without a single key a client may sign
// assertions with.
var errNoUsableKey = errors.New("no RSA (2048 bits or more) or EC P-384 signing key with a kid")

// clientKeyStore is the jwkset.Storage behind a client's keyfunc: jwkset
// parses the JWK Set (fetched or inline) and hands the keys to
// KeyReplaceAll, which keeps the ones a client may sign assertions with;
// KeyRead answers SMART's lookup, which needs the kid and the alg
// together (see lookupToken).
type clientKeyStore struct {
	*jwkset.MemoryJWKSet
}

func newClientKeyStore() clientKeyStore {
	return clientKeyStore{jwkset.NewMemoryStorage()}
}

// KeyReplaceAll keeps the usable keys of given: RSA of at least 2048 bits
// and EC P-384, with a kid, not marked for encryption. Keys of other
// kinds are skipped, as RFC 7517 asks; a set with no usable key is an
// error, which fails the fetch (or the refetch) that brought it.
func (s clientKeyStore) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	var keep []jwkset.JWK
	for _, k := range given {
		if usable(k) {
			keep = append(keep, k)
		}
	}
	if len(keep) == 0 {
		return errNoUsableKey
	}
	return s.MemoryJWKSet.KeyReplaceAll(ctx, keep)
}

// KeyRead returns the single key with the kid whose type fits the alg,
// both named by id (lookupToken). SMART Backend Services: "If no single
// key is a candidate, validation SHALL fail": none is
// jwkset.ErrKeyNotFound (which makes jwkset refetch the set), several is
// an invalid_client *Error.
func (s clientKeyStore) KeyRead(ctx context.Context, id string) (jwkset.JWK, error) {
	i := strings.LastIndexByte(id, 0)
	if i < 0 {
		return jwkset.JWK{}, jwkset.ErrKeyNotFound
	}
	kid, alg := id[:i], id[i+1:]
	keys, err := s.KeyReadAll(ctx)
	if err != nil {
		return jwkset.JWK{}, err
	}
	var found []jwkset.JWK
	for _, k := range keys {
		if k.Marshal().KID == kid && fits(k, alg) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return jwkset.JWK{}, fmt.Errorf("%w: no %s key with kid %q", jwkset.ErrKeyNotFound, alg, kid)
	case 1:
		return found[0], nil
	}
	return jwkset.JWK{}, invalidClient(fmt.Sprintf("the client's JWKS has %d %s keys with kid %q", len(found), alg, kid), nil)
}

// lookupToken is what a client's keyfunc is asked with: keyfunc looks a
// key up by the header's kid alone, so the kid it passes on to
// clientKeyStore.KeyRead carries the alg too.
func lookupToken(kid, alg string) *jwt.Token {
	return &jwt.Token{Header: map[string]any{"kid": kid + "\x00" + alg, "alg": alg}}
}

// usable reports whether a client may sign assertions with k.
func usable(k jwkset.JWK) bool {
	m := k.Marshal()
	if m.KID == "" || (m.USE != "" && m.USE != jwkset.UseSig) {
		return false
	}
	switch pub := publicKey(k).(type) {
	case *rsa.PublicKey:
		return pub.N.BitLen() >= minRSABits && pub.E >= 3 && pub.E%2 == 1
	case *ecdsa.PublicKey:
		return pub.Curve == elliptic.P384()
	}
	return false
}

// fits reports whether k may verify a signature made with alg: its type
// is the one alg needs, and its alg, when it names one, is alg.
func fits(k jwkset.JWK, alg string) bool {
	if a := k.Marshal().ALG; a != "" && string(a) != alg {
		return false
	}
	switch publicKey(k).(type) {
	case *rsa.PublicKey:
		return alg == algRS384
	case *ecdsa.PublicKey:
		return alg == algES384
	}
	return false
}

// publicKey is k's public key (jwkset also parses the private members a
// careless client may publish).
func publicKey(k jwkset.JWK) any {
	if priv, ok := k.Key().(interface{ Public() crypto.PublicKey }); ok {
		return priv.Public()
	}
	return k.Key()
}

// parseJWKS reads a JWK Set registered inline with a client, as jwkset
// reads a fetched one: keys of unsupported types are skipped, a
// malformed key fails the set.
func parseJWKS(doc []byte) (clientKeyStore, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(doc, &set); err != nil {
		return clientKeyStore{}, errors.New("not a JWK Set")
	}
	var keys []jwkset.JWK
	for _, m := range set.Keys {
		k, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
		switch {
		case errors.Is(err, jwkset.ErrUnsupportedKey):
			continue
		case err != nil:
			return clientKeyStore{}, fmt.Errorf("a key is malformed (kid %q)", m.KID)
		}
		keys = append(keys, k)
	}
	s := newClientKeyStore()
	return s, s.KeyReplaceAll(context.Background(), keys)
}
