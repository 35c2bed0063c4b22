package token

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerifyAccess is the token part of every FHIR request's
// authorization: a token seen before on this replica (remembered: expiry
// and the revocation check, answered from memory), and a token seen for
// the first time (signature with the cached key, claims).
func BenchmarkVerifyAccess(b *testing.B) {
	r := newRig(b, openSQLite(b), &clock{t: time.Now()})
	ctx := context.Background()
	raw, _, err := r.auth.IssueAccess(ctx, AccessGrant{
		Subject: "user-7", ClientID: "growth-chart", Scope: "launch/patient patient/Observation.rs patient/Condition.rs openid fhirUser",
		Patient: "123", FHIRUser: "Patient/123", Practices: []string{"1111"},
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.auth.VerifyAccess(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.Run("seen", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.auth.VerifyAccess(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.auth.mu.Lock()
			clear(r.auth.verified)
			r.auth.mu.Unlock()
			if _, err := r.auth.VerifyAccess(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIssueAccess is the signing cost of one access token.
func BenchmarkIssueAccess(b *testing.B) {
	r := newRig(b, openSQLite(b), &clock{t: time.Now()})
	ctx := context.Background()
	g := AccessGrant{Subject: "bulk-client", ClientID: "bulk-client", Scope: "system/*.rs"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.auth.IssueAccess(ctx, g); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAssertion is a client_credentials request's client
// authentication with the client's JWKS cached: signature, claims, and
// the jti recorded in the (SQLite) store. Signing the assertions, the
// client's work, is not timed.
func BenchmarkVerifyAssertion(b *testing.B) {
	rs, ec := clientSigners(b)
	srv := newJWKSServer(b, false, jwksOf(rs, ec))
	for _, k := range []clientSigner{rs, ec} {
		b.Run(k.method.Alg(), func(b *testing.B) {
			v := newVerifier(b, openSQLite(b), AssertionOptions{Dev: true})
			client := ClientKeys{ClientID: testClient, JWKSURL: srv.URL}
			ctx := context.Background()
			if _, err := v.Verify(ctx, client, k.sign(b, time.Now(), nil)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				a := k.sign(b, time.Now(), nil)
				b.StartTimer()
				if _, err := v.Verify(ctx, client, a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
