package registry

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz/internal/addr"
)

const maxURLLen = 2048

// checkURL checks a redirect, launch or JWKS URL: absolute, https, a
// public host, no credentials and no fragment. In development mode http
// and loopback or private hosts are accepted too. Hosts are not resolved:
// whoever fetches a URL must check the address it connects to.
func checkURL(p *problems, field, raw string, dev bool) {
	u, err := url.Parse(raw)
	switch {
	case len(raw) > maxURLLen:
		p.add(field, "must be at most %d characters", maxURLLen)
	case err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" || strings.ContainsAny(raw, " \t\r\n"):
		p.add(field, "%q is not an absolute URL", raw)
	case strings.Contains(raw, "#"):
		p.add(field, "%q must not have a fragment", raw)
	case u.User != nil:
		p.add(field, "%q must not contain a user name or password", redacted(u))
	case u.Scheme != "https" && !(dev && u.Scheme == "http"):
		p.add(field, "%q must use https (http is accepted only in development mode)", raw)
	case !dev && !addr.PublicHost(u.Hostname()):
		p.add(field, "%q must name a public host (loopback and private addresses are accepted only in development mode)", raw)
	}
}

func redacted(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// scopeTokenOK reports whether s is an RFC 6749 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func scopeTokenOK(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// smartVersions reports which SMART versions a scope string's resource
// scopes (patient/…, user/…, system/…) are written in: v1 ends them in
// .read, .write or .*, v2 in cruds letters (in that order). Other scopes
// (openid, launch/patient, …) belong to both.
func smartVersions(scope string) (v1, v2 bool) {
	for _, tok := range strings.Fields(scope) {
		ctx, rest, ok := strings.Cut(tok, "/")
		if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
			continue
		}
		rest, _, _ = strings.Cut(rest, "?")
		dot := strings.LastIndexByte(rest, '.')
		if dot < 0 {
			continue
		}
		switch perm := rest[dot+1:]; {
		case perm == "read" || perm == "write" || perm == "*":
			v1 = true
		case cruds(perm):
			v2 = true
		}
	}
	return v1, v2
}

// cruds reports whether s is a non-empty subsequence of "cruds".
func cruds(s string) bool {
	const order = "cruds"
	i := 0
	for _, c := range []byte(s) {
		j := strings.IndexByte(order[i:], c)
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return s != ""
}

// JWK Set limits: enough for key rotation, small enough to keep in a record.
const (
	maxJWKSBytes = 64 << 10
	maxJWKSKeys  = 20
	minRSABits   = 2048
)

// privateMembers are the JWK members that carry private or symmetric key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// checkJWKS checks an inline JWK Set: a JSON object whose "keys" hold one or
// more public RSA or EC signing keys and nothing private. It returns the
// set compacted.
func checkJWKS(p *problems, raw []byte) json.RawMessage {
	if len(raw) > maxJWKSBytes {
		p.add("jwks", "must be at most %d KiB", maxJWKSBytes>>10)
		return nil
	}
	var set struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		p.add("jwks", "is not a JSON object: %v", err)
		return nil
	}
	if _, ok := probe["keys"]; !ok {
		p.add("jwks", `is not a JWK Set: it has no "keys"`)
		return nil
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		p.add("jwks", `"keys" must be an array of JWK objects`)
		return nil
	}
	switch {
	case len(set.Keys) == 0:
		p.add("jwks", "must hold at least one public RSA or EC key")
	case len(set.Keys) > maxJWKSKeys:
		p.add("jwks", "must hold at most %d keys", maxJWKSKeys)
	}
	for i, k := range set.Keys {
		if msg := jwkProblem(k); msg != "" {
			p.add("jwks", "key %d: %s", i+1, msg)
		}
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return nil
	}
	return out.Bytes()
}

// jwkProblem says what is wrong with one JWK, "" if nothing.
func jwkProblem(k map[string]json.RawMessage) string {
	if k == nil {
		return "is not a JSON object"
	}
	var found []string
	for _, m := range privateMembers {
		if _, ok := k[m]; ok {
			found = append(found, m)
		}
	}
	if len(found) > 0 {
		return fmt.Sprintf("holds private key material (%s): give public keys only", strings.Join(found, ", "))
	}
	str := func(name string) (string, bool) {
		var s string
		raw, ok := k[name]
		ok = ok && json.Unmarshal(raw, &s) == nil
		return s, ok
	}
	if use, ok := k["use"]; ok {
		if s, _ := str("use"); s != "sig" {
			return fmt.Sprintf(`"use" must be "sig", not %s`, use)
		}
	}
	if raw, ok := k["kid"]; ok {
		if _, ok := str("kid"); !ok {
			return fmt.Sprintf(`"kid" must be a string, not %s`, raw)
		}
	}
	kty, _ := str("kty")
	alg, hasAlg := str("alg")
	if _, ok := k["alg"]; ok && !hasAlg {
		return `"alg" must be a string`
	}
	b64 := func(name string) ([]byte, string) {
		s, ok := str(name)
		if !ok {
			return nil, fmt.Sprintf("%s key needs %q", kty, name)
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, fmt.Sprintf("%q is not base64url", name)
		}
		return b, ""
	}
	switch kty {
	case "RSA":
		if hasAlg && !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
			return fmt.Sprintf("alg %q is not an RSA signature algorithm", alg)
		}
		n, msg := b64("n")
		if msg != "" {
			return msg
		}
		e, msg := b64("e")
		if msg != "" {
			return msg
		}
		if bits := new(big.Int).SetBytes(n).BitLen(); bits < minRSABits {
			return fmt.Sprintf("RSA modulus has %d bits, fewer than %d", bits, minRSABits)
		}
		if ev := new(big.Int).SetBytes(e); ev.BitLen() > 31 || ev.Int64() < 3 || ev.Bit(0) == 0 {
			return "RSA exponent must be an odd number from 3 to 2^31"
		}
	case "EC":
		if hasAlg && !strings.HasPrefix(alg, "ES") {
			return fmt.Sprintf("alg %q is not an ECDSA algorithm", alg)
		}
		crv, _ := str("crv")
		curves := map[string]struct {
			c    ecdh.Curve
			size int
		}{"P-256": {ecdh.P256(), 32}, "P-384": {ecdh.P384(), 48}, "P-521": {ecdh.P521(), 66}}
		c, ok := curves[crv]
		if !ok {
			return fmt.Sprintf(`EC key "crv" must be P-256, P-384 or P-521, not %q`, crv)
		}
		x, msg := b64("x")
		if msg != "" {
			return msg
		}
		y, msg := b64("y")
		if msg != "" {
			return msg
		}
		if len(x) != c.size || len(y) != c.size {
			return fmt.Sprintf("%s coordinates must be %d bytes", crv, c.size)
		}
		if _, err := c.c.NewPublicKey(append(append([]byte{4}, x...), y...)); err != nil {
			return fmt.Sprintf("the point is not on %s", crv)
		}
	case "":
		return `needs "kty"`
	default:
		return fmt.Sprintf(`"kty" must be RSA or EC, not %q`, kty)
	}
	return ""
}
