package app

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/fhirgraph/fhirgraph/authz/registry"
)

// practiceCmd is `fhirgraph practice create|list`: the sites whose data the
// platform holds, each known by its PIN.
func practiceCmd(ctx context.Context, e *env, args []string) error {
	return runActions(ctx, e, "practice", []action{
		{"create", "--name N --pin PIN [--json]", practiceCreate},
		{"list", "[--json]", practiceList},
	}, args)
}

func practiceCreate(ctx context.Context, e *env, lead *flag.FlagSet, args []string) error {
	fs := newFlagSet("practice create", e)
	var sf storeFlags
	sf.register(fs, e)
	var spec registry.PracticeSpec
	fs.StringVar(&spec.Name, "name", "", "the practice's name")
	fs.StringVar(&spec.PIN, "pin", "", "the practice's PIN: 4 to 12 letters and digits, unique (kept in upper case)")
	asJSON := fs.Bool("json", false, "print the practice as JSON")
	if _, err := parseAction(fs, lead, args, 0); err != nil {
		return err
	}
	return withRegistry(ctx, e, &sf, func(reg *registry.Registry) error {
		p, err := reg.CreatePractice(ctx, spec)
		if err != nil {
			return flagErrors(err)
		}
		if *asJSON {
			return writeJSON(e.stdout, p)
		}
		fmt.Fprintf(e.stdout, "created practice %s (%s)\n", p.PIN, p.Name)
		return nil
	})
}

func practiceList(ctx context.Context, e *env, lead *flag.FlagSet, args []string) error {
	fs := newFlagSet("practice list", e)
	var sf storeFlags
	sf.register(fs, e)
	asJSON := fs.Bool("json", false, "print the practices as a JSON array")
	if _, err := parseAction(fs, lead, args, 0); err != nil {
		return err
	}
	return withRegistry(ctx, e, &sf, func(reg *registry.Registry) error {
		practices, err := reg.ListPractices(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, practices)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PIN\tSTATUS\tNAME")
		for _, p := range practices {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.PIN, p.Status, p.Name)
		}
		return tw.Flush()
	})
}
