package token

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://ehr.example.org/oauth"
	testAudience = "https://ehr.example.org/fhir"
	testRotation = time.Hour
)

// rig is one replica's token machinery on a store.
type rig struct {
	keys *Keyring
	deny *Denylist
	auth *Authority
}

func newRig(t testing.TB, s store.Store, c *clock) *rig {
	t.Helper()
	keys, err := NewKeyring(s, KeyringOptions{Rotation: testRotation, MaxTokenLifetime: time.Hour, Refresh: time.Minute, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	deny := NewDenylist(s, DenylistOptions{CacheTTL: 5 * time.Second, Now: c.Now})
	auth, err := NewAuthority(keys, deny, AuthorityOptions{
		Issuer: testIssuer, Audience: testAudience, AccessLifetime: 30 * time.Minute, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{keys: keys, deny: deny, auth: auth}
}

// nextBoundary is the start of the rotation slot after t's.
func nextBoundary(t time.Time) time.Time { return t.Truncate(testRotation).Add(testRotation) }

func headerKID(t *testing.T, raw string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}

func keyRecords(t *testing.T, s store.Store) []store.Record {
	t.Helper()
	recs, err := s.Collection(keysDef).Find(context.Background(), "kind", keyKind)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestRacingKeyringsEndWithOneKeyPerSlot(t *testing.T) {
	eachEngine(t, func(t *testing.T, s store.Store) {
		c := newClock()
		rigs := []*rig{newRig(t, s, c), newRig(t, s, c), newRig(t, s, c)}
		var wg sync.WaitGroup
		errs := make([]error, len(rigs))
		for i, r := range rigs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = r.keys.Refresh(context.Background())
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// The current slot's key and the next one's, whoever made them.
		if recs := keyRecords(t, s); len(recs) != 2 {
			t.Fatalf("%d key records after racing first uses, want 2", len(recs))
		}
		var kids []string
		for _, r := range rigs {
			raw, _, err := r.auth.IssueAccess(context.Background(), AccessGrant{Subject: "u", ClientID: "app", Scope: "openid"})
			if err != nil {
				t.Fatal(err)
			}
			kids = append(kids, headerKID(t, raw))
		}
		if kids[0] != kids[1] || kids[1] != kids[2] {
			t.Errorf("replicas sign with different keys: %v", kids)
		}
	})
}

func TestRotationKeepsLiveTokensValid(t *testing.T) {
	eachEngine(t, func(t *testing.T, s store.Store) {
		c := newClock()
		boundary := nextBoundary(c.Now())
		c.Set(boundary.Add(-10 * time.Minute))
		r := newRig(t, s, c)
		ctx := context.Background()
		old, _, err := r.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "app", Scope: "patient/*.rs"})
		if err != nil {
			t.Fatal(err)
		}
		c.Set(boundary.Add(5 * time.Minute)) // the old token lives until boundary+20m
		fresh, _, err := r.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "app", Scope: "patient/*.rs"})
		if err != nil {
			t.Fatal(err)
		}
		if headerKID(t, old) == headerKID(t, fresh) {
			t.Fatal("the key did not rotate at the slot boundary")
		}
		for name, raw := range map[string]string{"token of the retired key": old, "token of the new key": fresh} {
			if _, err := r.auth.VerifyAccess(ctx, raw); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		// The retired key's record expires once its last token has.
		recs := keyRecords(t, s)
		var retired *store.Record
		for i := range recs {
			if k, _ := decodeKey(recs[i]); k != nil && k.kid == headerKID(t, old) {
				retired = &recs[i]
			}
		}
		if retired == nil {
			t.Fatal("the retired key's record is gone while its tokens live")
		}
		if want := boundary.Add(time.Hour + retireSlack); !retired.ExpiresAt.Equal(want) {
			t.Errorf("retired key expires at %v, want %v (end of signing + longest token lifetime + slack)", retired.ExpiresAt, want)
		}
		// Past that expiry the keyring no longer verifies with it, even
		// from its cache.
		c.Set(boundary.Add(time.Hour + retireSlack))
		if _, err := r.keys.verifier(ctx, headerKID(t, old)); err != errUnknownKey {
			t.Errorf("verifier of an expired key: %v, want errUnknownKey", err)
		}
	})
}

func TestKeyringsOnOneStoreAgree(t *testing.T) {
	eachEngine(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		c := newClock()
		boundary := nextBoundary(c.Now())
		c.Set(boundary.Add(-2 * time.Minute))
		a, b := newRig(t, s, c), newRig(t, s, c)
		raw, _, err := a.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "app"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.auth.VerifyAccess(ctx, raw); err != nil {
			t.Fatalf("replica b refuses replica a's token: %v", err)
		}
		ja, _ := a.keys.JWKS(ctx)
		jb, _ := b.keys.JWKS(ctx)
		if string(ja) != string(jb) {
			t.Errorf("the replicas publish different JWKS:\n%s\n%s", ja, jb)
		}
		// Two slots later a signs first, with a key b has never read: b
		// meets the new kid and reads the store again.
		c.Set(boundary.Add(testRotation + 2*time.Second))
		raw, _, err = a.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "app"})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := b.keys.set.Load().byKID[headerKID(t, raw)]; ok {
			t.Fatal("b knew the new key already: the test proves nothing")
		}
		if _, err := b.auth.VerifyAccess(ctx, raw); err != nil {
			t.Fatalf("replica b refuses replica a's token after rotation: %v", err)
		}
		raw2, _, err := b.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "app"})
		if err != nil {
			t.Fatal(err)
		}
		if headerKID(t, raw2) != headerKID(t, raw) {
			t.Error("after rotation the replicas sign with different keys")
		}
		if _, err := a.auth.VerifyAccess(ctx, raw2); err != nil {
			t.Fatalf("replica a refuses replica b's token after rotation: %v", err)
		}
		// Slots n (retired, its tokens may live), n+1 (retired), n+2
		// (signing) and n+3 (next).
		if recs := keyRecords(t, s); len(recs) != 4 {
			t.Errorf("%d key records, want 4", len(recs))
		}
	})
}

func TestJWKSHandlerPublishesPublicKeysOnly(t *testing.T) {
	s := openSQLite(t)
	c := newClock()
	r := newRig(t, s, c)
	raw, _, err := r.auth.IssueAccess(context.Background(), AccessGrant{Subject: "u", ClientID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.keys.JWKSHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 2 {
		t.Fatalf("%d keys published, want 2 (current and next): %s", len(doc.Keys), body)
	}
	for _, k := range doc.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("published key %s has private member %q", k["kid"], private)
			}
		}
		if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" {
			t.Errorf("published key %v", k)
		}
	}
	// A reader verifies the server's token with the published key.
	reader, err := keyfunc.NewJWKSetJSON(body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(raw, reader.Keyfunc, jwt.WithValidMethods([]string{"RS256"})); err != nil {
		t.Errorf("the published key does not verify the server's token (kid %s): %v", headerKID(t, raw), err)
	}

	resp, err = http.Post(srv.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

func TestSigningKeyNeverPrintsItsSecret(t *testing.T) {
	s := openSQLite(t)
	r := newRig(t, s, newClock())
	key, err := r.keys.signer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d := key.priv.D.String()
	for _, form := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := sprintf(form, key); strings.Contains(out, d) || strings.Contains(out, key.priv.Primes[0].String()) {
			t.Errorf("%s of a signing key prints its private key", form)
		}
	}
}
