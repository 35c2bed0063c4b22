package authz

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/token"
)

// A token outlives neither its client's suspension nor a practice's
// consent: each new guard (a fresh standing cache) sees the registry as it
// is now.
func TestTokensFollowTheirClientsStanding(t *testing.T) {
	ctx := context.Background()
	st, auth, pol := newTestStack(t)
	reg := registry.New(st, registry.Options{})
	for _, pin := range []string{"PRACA", "PRACB"} {
		if _, err := reg.CreatePractice(ctx, registry.PracticeSpec{Name: pin, PIN: pin}); err != nil {
			t.Fatal(err)
		}
	}
	c, _, err := reg.CreateClient(ctx, registry.ClientSpec{Name: "exporter", Kind: registry.KindBackend, Scope: "system/*.rs", Secret: true, Practices: []string{"PRACA", "PRACB"}})
	if err != nil {
		t.Fatal(err)
	}
	raw := mint(t, auth, token.AccessGrant{Subject: c.ID, ClientID: c.ID, Scope: "system/*.rs", Practices: []string{"PRACA", "PRACB"}})
	unregistered := mint(t, auth, token.AccessGrant{ClientID: "operator", Scope: "system/*.rs", Practices: []string{"PRACA"}})
	verify := func(tok string) (*Principal, error) {
		g, err := NewGuard(GuardConfig{Authority: auth, Policy: pol, BaseURL: base, Clients: reg})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := http.NewRequest("GET", base+"/Patient", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return g.Authenticate(r)
	}
	practices := func(tok string) []string {
		t.Helper()
		p, err := verify(tok)
		if err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		return p.Claims.Practices
	}
	if got := practices(raw); !slices.Equal(got, []string{"PRACA", "PRACB"}) {
		t.Fatalf("practices %v", got)
	}
	// A practice's consent withdrawn: the token reaches the other only.
	if _, err := reg.SetClientPractices(ctx, c.ID, []string{"PRACB"}); err != nil {
		t.Fatal(err)
	}
	if got := practices(raw); !slices.Equal(got, []string{"PRACB"}) {
		t.Errorf("after PRACA withdrew: practices %v", got)
	}
	// The client suspended: its tokens are refused.
	if _, err := reg.SetClientStatus(ctx, c.ID, registry.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	_, err = verify(raw)
	if te := token.AsError(err); te == nil || te.Code != token.CodeInvalidToken {
		t.Errorf("suspended client's token: %v", err)
	}
	// An operator's token for a client the registry does not know is
	// taken as minted.
	if got := practices(unregistered); !slices.Equal(got, []string{"PRACA"}) {
		t.Errorf("operator token: practices %v", got)
	}
}
