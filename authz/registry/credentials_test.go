package registry

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/enginetest"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A rotated secret keeps working for the grace period, then stops; the
// new one works at once; revoking stops both.
func TestRotateClientSecretKeepsTheOldOneForTheGracePeriod(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		clock := &testClock{t: time.Now()}
		r := New(st, Options{KDF: testKDF, Now: clock.now})
		c, first, err := r.CreateClient(ctx, ClientSpec{Name: "App", Kind: KindConfidential, Secret: true, Scope: "user/*.rs", RedirectURIs: []string{"https://app.example.org/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		second, err := r.RotateClientSecret(ctx, c.ID, time.Hour)
		if err != nil || second == "" || second == first {
			t.Fatalf("rotate: %q %v", second, err)
		}
		for _, s := range []string{first, second} {
			if _, err := r.Authenticate(ctx, c.ID, s); err != nil {
				t.Errorf("in the grace period: %v", err)
			}
		}
		if _, err := r.Authenticate(ctx, c.ID, "wrong"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("a wrong secret: %v", err)
		}
		clock.add(time.Hour + time.Second)
		if _, err := r.Authenticate(ctx, c.ID, first); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("after the grace period the old secret: %v", err)
		}
		// Rotating without grace drops the previous secret at once.
		third, _ := r.RotateClientSecret(ctx, c.ID, 0)
		if _, err := r.Authenticate(ctx, c.ID, second); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("rotated without grace, the old secret: %v", err)
		}
		if _, err := r.RevokeClientSecret(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Authenticate(ctx, c.ID, third); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("a revoked secret: %v", err)
		}
		raw := rawRecord(t, st, clientsDef, c.ID)
		if strings.Contains(string(raw.Data), third) || strings.Contains(string(raw.Data), second) {
			t.Error("a secret is stored in the clear")
		}
		pub, _, _ := r.CreateClient(ctx, ClientSpec{Name: "Pub", Kind: KindPublic, Scope: "user/*.rs", RedirectURIs: []string{"https://app.example.org/cb"}})
		var ve *ValidationError
		if _, err := r.RotateClientSecret(ctx, pub.ID, time.Hour); !errors.As(err, &ve) || ve.Problems[0].Field != "secret" {
			t.Errorf("rotating a public client's secret: %v", err)
		}
	})
}

func TestSetClientPracticesReplacesTheConsents(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		r := newTestRegistry(st)
		for _, pin := range []string{"ALPHA", "BETA"} {
			if _, err := r.CreatePractice(ctx, PracticeSpec{Name: pin, PIN: pin}); err != nil {
				t.Fatal(err)
			}
		}
		c, _, err := r.CreateClient(ctx, ClientSpec{Name: "App", Kind: KindPublic, Scope: "user/*.rs", RedirectURIs: []string{"https://app.example.org/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		if c, err = r.SetClientPractices(ctx, c.ID, []string{"alpha", "BETA", "ALPHA"}); err != nil || strings.Join(c.Practices, ",") != "ALPHA,BETA" {
			t.Fatalf("%v %v", c.Practices, err)
		}
		if got, _ := r.ClientsByPractice(ctx, "BETA"); len(got) != 1 {
			t.Errorf("by practice: %v", got)
		}
		var ve *ValidationError
		if _, err := r.SetClientPractices(ctx, c.ID, []string{"NOPE1"}); !errors.As(err, &ve) {
			t.Errorf("an unknown practice: %v", err)
		}
		if c, _ = r.GetClient(ctx, c.ID); len(c.Practices) != 2 {
			t.Errorf("a refused change changed %v", c.Practices)
		}
		if c, err = r.SetClientPractices(ctx, c.ID, nil); err != nil || len(c.Practices) != 0 {
			t.Errorf("clearing: %v %v", c.Practices, err)
		}
	})
}

func TestHashSecretAndCheckURLServeOtherStores(t *testing.T) {
	ctx := context.Background()
	r := newTestRegistry(enginetest.SQLite(t))
	h, err := r.HashSecret(ctx, "Some-pass-1!")
	if err != nil || !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("%q %v", h, err)
	}
	if ok, _ := r.VerifySecret(ctx, "Some-pass-1!", h); !ok {
		t.Error("the right secret fails")
	}
	if ok, _ := r.VerifySecret(ctx, "other", h); ok {
		t.Error("a wrong secret passes")
	}
	if ok, err := r.VerifySecret(ctx, "x", ""); ok || err != nil {
		t.Errorf("no hash: %v %v", ok, err)
	}
	for raw, want := range map[string]string{
		"https://app.example.org/cb": "", "http://app.example.org/cb": "must use https", "https://localhost/cb": "public host",
		"https://192.168.1.2/cb": "public host", "not a url": "not an absolute URL",
	} {
		if got := CheckURL(raw, false); (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("CheckURL(%q) = %q, want %q", raw, got, want)
		}
	}
	if got := CheckURL("http://localhost:9/cb", true); got != "" {
		t.Errorf("development mode: %q", got)
	}
}

// The grace period belongs to the secret a rotation replaced, once:
// rotating again ends the first secret at once (it is not carried on),
// and revoking during a grace period ends both secrets.
func TestSecondRotationAndRevocationEndTheGracedSecret(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		clock := &testClock{t: time.Now()}
		r := New(st, Options{KDF: testKDF, Now: clock.now})
		c, first, err := r.CreateClient(ctx, ClientSpec{Name: "App", Kind: KindConfidential, Secret: true, Scope: "user/*.rs", RedirectURIs: []string{"https://app.example.org/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		second, _ := r.RotateClientSecret(ctx, c.ID, time.Hour)
		clock.add(30 * time.Minute)
		third, _ := r.RotateClientSecret(ctx, c.ID, time.Hour)
		if _, err := r.Authenticate(ctx, c.ID, first); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("the first secret after a second rotation: %v", err)
		}
		for _, s := range []string{second, third} {
			if _, err := r.Authenticate(ctx, c.ID, s); err != nil {
				t.Errorf("a current or graced secret: %v", err)
			}
		}
		if _, err := r.RevokeClientSecret(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{first, second, third} {
			if _, err := r.Authenticate(ctx, c.ID, s); !errors.Is(err, ErrBadCredentials) {
				t.Errorf("a secret after revocation in the grace period: %v", err)
			}
		}
		// A suspended client authenticates with no secret, graced or not.
		fourth, _ := r.RotateClientSecret(ctx, c.ID, 0)
		fifth, _ := r.RotateClientSecret(ctx, c.ID, time.Hour)
		if _, err := r.SetClientStatus(ctx, c.ID, StatusSuspended); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{fourth, fifth} {
			if _, err := r.Authenticate(ctx, c.ID, s); !errors.Is(err, ErrNotActive) {
				t.Errorf("a suspended client's secret: %v", err)
			}
		}
	})
}
