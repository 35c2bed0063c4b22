package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
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

// clientKey is one usable signing key of a client's JWK Set.
type clientKey struct {
	kid string
	alg string // the JWK's alg; "" when it does not say
	pub any    // *rsa.PublicKey or *ecdsa.PublicKey (P-384)
}

// fits reports whether the key may verify a signature made with alg.
func (k clientKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch k.pub.(type) {
	case *rsa.PublicKey:
		return alg == algRS384
	case *ecdsa.PublicKey:
		return alg == algES384
	}
	return false
}

// clientKeySet is the usable keys of a client's JWK Set.
type clientKeySet []clientKey

// find returns the single key with the kid that fits alg (SMART: zero or
// several candidates fail the verification); found is false when there
// is none.
func (s clientKeySet) find(kid, alg string) (key any, found bool, err error) {
	var match []clientKey
	for _, k := range s {
		if k.kid == kid && k.fits(alg) {
			match = append(match, k)
		}
	}
	switch len(match) {
	case 0:
		return nil, false, nil
	case 1:
		return match[0].pub, true, nil
	}
	return nil, false, invalidClient(fmt.Sprintf("the client's JWKS has %d %s keys with kid %q", len(match), alg, kid), nil)
}

// jwk holds the members of a JWK (RFC 7517, 7518) that are read here.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads a JWK Set, keeping the keys that can verify a client
// assertion: RSA of at least 2048 bits and EC P-384, with a kid, not
// marked for encryption. Keys of other kinds are skipped, as RFC 7517
// asks; a set with no usable key is an error.
func parseJWKS(data []byte) (clientKeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, errors.New("not a JWK Set")
	}
	var set clientKeySet
	for _, raw := range doc.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil || k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		var pub any
		switch k.Kty {
		case "RSA":
			pub = rsaKey(k)
		case "EC":
			pub = ecKey(k)
		}
		if pub != nil {
			set = append(set, clientKey{kid: k.Kid, alg: k.Alg, pub: pub})
		}
	}
	if len(set) == 0 {
		return nil, errors.New("no RSA (2048 bits or more) or EC P-384 signing key with a kid")
	}
	return set, nil
}

func rsaKey(k jwk) any {
	n, err1 := base64.RawURLEncoding.DecodeString(k.N)
	e, err2 := base64.RawURLEncoding.DecodeString(k.E)
	if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
		return nil
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
		return nil
	}
	return pub
}

func ecKey(k jwk) any {
	if k.Crv != "P-384" {
		return nil
	}
	x, err1 := base64.RawURLEncoding.DecodeString(k.X)
	y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
	if err1 != nil || err2 != nil || len(x) != 48 || len(y) != 48 {
		return nil
	}
	// The uncompressed point encoding, which ParseUncompressedPublicKey
	// checks is on the curve.
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), point)
	if err != nil {
		return nil
	}
	return pub
}
