package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/fhirgraph/fhirgraph/authz/registry"
)

// userCmd is `fhirgraph user create|list|suspend|activate`: the people who
// log in at the authorization server.
func userCmd(ctx context.Context, e *env, args []string) error {
	return runActions(ctx, e, "user", []action{
		{"create", "--kind patient|practitioner|staff --username U --password P [--patient ID] [--practitioner ID] [--practice PIN]… [--json]", userCreate},
		{"list", "[--json]", userList},
		{"suspend", "USERNAME", userStatus(registry.StatusSuspended)},
		{"activate", "USERNAME", userStatus(registry.StatusActive)},
	}, args)
}

func userCreate(ctx context.Context, e *env, lead *flag.FlagSet, args []string) error {
	fs := newFlagSet("user create", e)
	var sf storeFlags
	sf.register(fs, e)
	var spec registry.UserSpec
	var practices multiFlag
	kind := fs.String("kind", "", "patient (sees one Patient's data), practitioner (a Practitioner in one or more practices) or staff")
	fs.StringVar(&spec.Username, "username", "", "login name: 3 to 64 letters, digits and . _ @ + - (case-insensitive)")
	fs.StringVar(&spec.Password, "password", "", "password, 8 to 256 characters")
	fs.StringVar(&spec.Patient, "patient", "", "id of the user's Patient resource (patient users)")
	fs.StringVar(&spec.Practitioner, "practitioner", "", "id of the user's Practitioner resource (practitioner users)")
	fs.Var(&practices, "practice", "PIN of a practice the user belongs to (repeatable; practitioners and staff)")
	asJSON := fs.Bool("json", false, "print the user as JSON")
	if _, err := parseAction(fs, lead, args, 0); err != nil {
		return err
	}
	spec.Kind, spec.Practices = registry.UserKind(*kind), practices
	return withRegistry(ctx, e, &sf, func(reg *registry.Registry) error {
		u, err := reg.CreateUser(ctx, spec)
		if err != nil {
			return flagErrors(err)
		}
		if *asJSON {
			return writeJSON(e.stdout, u)
		}
		fmt.Fprintf(e.stdout, "created %s user %s%s\n", u.Kind, u.Username, userLinks(u))
		return nil
	})
}

// userLinks describes what a user is linked to.
func userLinks(u registry.User) string {
	var parts []string
	if u.Patient != "" {
		parts = append(parts, "Patient/"+u.Patient)
	}
	if u.Practitioner != "" {
		parts = append(parts, "Practitioner/"+u.Practitioner)
	}
	if len(u.Practices) > 0 {
		parts = append(parts, "practices "+strings.Join(u.Practices, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func userList(ctx context.Context, e *env, lead *flag.FlagSet, args []string) error {
	fs := newFlagSet("user list", e)
	var sf storeFlags
	sf.register(fs, e)
	asJSON := fs.Bool("json", false, "print the users as a JSON array")
	if _, err := parseAction(fs, lead, args, 0); err != nil {
		return err
	}
	return withRegistry(ctx, e, &sf, func(reg *registry.Registry) error {
		users, err := reg.ListUsers(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, users)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tSTATUS\tKIND\tLINKED TO")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Username, u.Status, u.Kind, strings.Trim(userLinks(u), " ()"))
		}
		return tw.Flush()
	})
}

func userStatus(s registry.Status) actionFunc {
	return func(ctx context.Context, e *env, lead *flag.FlagSet, args []string) error {
		verb := map[registry.Status]string{registry.StatusSuspended: "suspend", registry.StatusActive: "activate"}[s]
		fs := newFlagSet("user "+verb, e)
		var sf storeFlags
		sf.register(fs, e)
		pos, err := parseAction(fs, lead, args, 1)
		if err != nil {
			return err
		}
		return withRegistry(ctx, e, &sf, func(reg *registry.Registry) error {
			u, err := reg.SetUserStatus(ctx, pos[0], s)
			if errors.Is(err, registry.ErrNotFound) {
				return fmt.Errorf("no user is named %q", pos[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "user %s is %s\n", u.Username, u.Status)
			return nil
		})
	}
}
