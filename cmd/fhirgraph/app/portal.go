package app

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/portal"
	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/store"
)

// portalSettings configure the developer portal: how it sends mail, and the
// portal roles of staff users.
type portalSettings struct {
	smtpURL, from *string
	roles         *roleGrants
}

// roleGrants is the repeatable --portal-role USER=ROLE.
type roleGrants [][2]string

func (g *roleGrants) String() string {
	var parts []string
	for _, r := range *g {
		parts = append(parts, r[0]+"="+r[1])
	}
	return strings.Join(parts, ",")
}

func (g *roleGrants) Set(v string) error {
	user, role, ok := strings.Cut(v, "=")
	if !ok || user == "" || (role != policy.RoleReviewer && role != policy.RolePracticeAdmin) {
		return fmt.Errorf("want USER=%s or USER=%s", policy.RoleReviewer, policy.RolePracticeAdmin)
	}
	*g = append(*g, [2]string{user, role})
	return nil
}

// portalFlags registers serve's developer portal flags.
func portalFlags(fs *flag.FlagSet, e *env) portalSettings {
	roles := &roleGrants{}
	fs.Var(roles, "portal-role", "give a staff user (fhirgraph user create --kind staff) a developer portal role at /admin: USER=reviewer (approves, rejects and suspends registrations) or USER=practice-admin (confirms consent for the user's practices); repeatable, kept in the store")
	return portalSettings{
		roles:   roles,
		smtpURL: fs.String("smtp-url", e.getenv("FHIRGRAPH_SMTP_URL"), "SMTP server for the developer portal's mail, smtp://user:password@host:587 or smtps://…:465 (env FHIRGRAPH_SMTP_URL); without it mail stays in the store's outbox and its links are logged"),
		from:    fs.String("mail-from", envOr(e, "FHIRGRAPH_MAIL_FROM", "fhirgraph@localhost"), "sender address of the developer portal's mail (env FHIRGRAPH_MAIL_FROM)"),
	}
}

// newPortal builds the developer portal (/portal/, /admin) for the server
// at root, and gives the --portal-role grants.
func newPortal(ctx context.Context, st store.Store, root string, dev bool, ps portalSettings, log *slog.Logger) (*portal.Portal, error) {
	pol, err := policy.New()
	if err != nil {
		return nil, err
	}
	cfg := portal.Config{Store: st, Registry: registry.New(st, registry.Options{}), Policy: pol, RootURL: root, Dev: dev, Logger: log}
	if *ps.smtpURL != "" {
		m, err := portal.NewSMTPMailer(*ps.smtpURL, *ps.from)
		if err != nil {
			return nil, fmt.Errorf("--smtp-url: %w", err)
		}
		cfg.Mailer = m
	}
	p, err := portal.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, g := range *ps.roles {
		if err := p.GrantRoles(ctx, g[0], g[1]); err != nil {
			return nil, fmt.Errorf("--portal-role %s=%s: %w", g[0], g[1], err)
		}
	}
	return p, nil
}
