package registry

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestHashAndVerify(t *testing.T) {
	ctx := context.Background()
	h := newHasher(KDF{})
	if h.kdf != DefaultKDF {
		t.Fatalf("zero KDF gives %+v, want DefaultKDF", h.kdf)
	}
	enc, err := h.hash(ctx, "s3cret value")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not argon2id with the default parameters", enc)
	}
	again, _ := h.hash(ctx, "s3cret value")
	if again == enc {
		t.Error("two hashes of one secret are equal: no salt")
	}
	// A hash made with other parameters still verifies: they travel in it.
	old := newHasher(testKDF)
	oldEnc, _ := old.hash(ctx, "s3cret value")
	for _, tc := range []struct {
		name, secret, enc string
		want              bool
	}{
		{"right", "s3cret value", enc, true},
		{"wrong", "s3cret valuE", enc, false},
		{"prefix", "s3cret valu", enc, false},
		{"other parameters", "s3cret value", oldEnc, true},
		{"empty hash", "s3cret value", "", false},
		{"bcrypt hash", "s3cret value", "$2a$10$abcdefghijklmnopqrstuu", false},
		{"tampered cost", "s3cret value", strings.Replace(oldEnc, "m=64", "m=99999999", 1), false},
		{"zero time", "s3cret value", strings.Replace(oldEnc, "t=1", "t=0", 1), false},
		{"bad salt", "s3cret value", strings.Replace(oldEnc, "$m=64,t=1,p=1$", "$m=64,t=1,p=1$!!", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.calls.Load()
			got, err := h.verify(ctx, tc.secret, tc.enc)
			if err != nil || got != tc.want {
				t.Errorf("verify = %v, %v; want %v", got, err, tc.want)
			}
			if n := h.calls.Load() - before; n != 1 {
				t.Errorf("%d evaluations, want 1", n)
			}
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for range cap(h.slots) {
		h.slots <- struct{}{} // every slot busy
	}
	if _, err := h.verify(cancelled, "x", enc); err == nil {
		t.Error("verify waiting for a slot ignores its context")
	}
}

func TestJWKS(t *testing.T) {
	r, e := testKeys(t)
	rsaPub, ecPub := rsaJWK(&r.PublicKey), ecJWK(t, &e.PublicKey)
	with := func(k map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for n, v := range k {
			out[n] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}
	small := with(rsaPub, "n", b64.EncodeToString(make([]byte, 128))) // 0 bits
	offCurve := with(ecPub, "y", ecPub["x"])
	for _, tc := range []struct {
		name string
		raw  string
		want string // part of the message; "" for valid
	}{
		{"RSA and EC", string(jwks(t, rsaPub, ecPub)), ""},
		{"RSA without alg, use or kid", string(jwks(t, with(rsaPub, "alg", nil, "use", nil, "kid", nil))), ""},
		{"not JSON", "{", "not a JSON object"},
		{"an array", `[{"kty":"RSA"}]`, "not a JSON object"},
		{"no keys", `{"jwks_uri":"x"}`, `no "keys"`},
		{"keys not an array", `{"keys":{}}`, "array of JWK objects"},
		{"a key that is not an object", `{"keys":["x"]}`, "array of JWK objects"},
		{"null key", `{"keys":[null]}`, "not a JSON object"},
		{"empty", `{"keys":[]}`, "at least one"},
		{"RSA private key", string(jwks(t, with(rsaPub, "d", "AQAB", "p", "AQAB"))), "private key material (d, p)"},
		{"EC private key", string(jwks(t, with(ecPub, "d", "AQAB"))), "private key material (d)"},
		{"symmetric key", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, "private key material (k)"},
		{"OKP key", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`, `"kty" must be RSA or EC`},
		{"no kty", `{"keys":[{"n":"AQAB"}]}`, `needs "kty"`},
		{"encryption key", string(jwks(t, with(rsaPub, "use", "enc"))), `"use" must be "sig"`},
		{"numeric kid", string(jwks(t, with(rsaPub, "kid", 7))), `"kid" must be a string`},
		{"RSA key with an EC alg", string(jwks(t, with(rsaPub, "alg", "ES384"))), "not an RSA signature algorithm"},
		{"EC key with an RSA alg", string(jwks(t, with(ecPub, "alg", "RS384"))), "not an ECDSA algorithm"},
		{"RSA without n", string(jwks(t, with(rsaPub, "n", nil))), `needs "n"`},
		{"RSA n not base64url", string(jwks(t, with(rsaPub, "n", "a+b/"))), `"n" is not base64url`},
		{"small RSA modulus", string(jwks(t, small)), "fewer than 2048"},
		{"even RSA exponent", string(jwks(t, with(rsaPub, "e", "Ag"))), "exponent"},
		{"unknown curve", string(jwks(t, with(ecPub, "crv", "secp256k1"))), `"crv" must be`},
		{"short coordinate", string(jwks(t, with(ecPub, "x", "AQAB"))), "coordinates must be 48 bytes"},
		{"point off the curve", string(jwks(t, offCurve)), "not on P-384"},
		{"one bad key among good ones", string(jwks(t, rsaPub, with(ecPub, "d", "AQAB"))), "key 2: holds private"},
		{"too large", `{"keys":[],"x":"` + strings.Repeat("a", maxJWKSBytes) + `"}`, "at most 64 KiB"},
		{"too many keys", string(jwks(t, repeatKey(rsaPub, 21)...)), "at most 20 keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problems{ValidationError{What: "client"}}
			out := checkJWKS(&p, []byte(tc.raw))
			err := p.err()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want == "" && !json.Valid(out):
				t.Errorf("returned %q", out)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one saying %q", err, tc.want)
			case tc.want != "" && strings.Contains(tc.name, "private") && strings.Contains(err.Error(), "AQAB"):
				t.Errorf("the error quotes key material: %v", err)
			}
		})
	}
}

func repeatKey(k map[string]any, n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = k
	}
	return out
}

// BenchmarkVerify is the cost of one password or client-secret check with
// the production parameters (what a login or a client_secret_basic token
// request pays). Run with -benchmem to see the memory each holds.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	h := newHasher(DefaultKDF)
	enc, err := h.hash(ctx, randomToken(secretBytes))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if ok, err := h.verify(ctx, "wrong", enc); ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkVerifyParallel is the throughput of checks on every core at
// once, bounded by the hasher's slots.
func BenchmarkVerifyParallel(b *testing.B) {
	ctx := context.Background()
	h := newHasher(DefaultKDF)
	enc, _ := h.hash(ctx, randomToken(secretBytes))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.verify(ctx, "wrong", enc)
		}
	})
}
