package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/fhirgraph/fhirgraph/authz/registry"
)

// clientCmd is `fhirgraph client create|list|suspend|activate`: OAuth
// clients (SMART apps and backend services) in the registry.
func clientCmd(ctx context.Context, e *env, args []string) error {
	return runActions(ctx, e, "client", []action{
		{"create", "--name N --kind public|confidential|backend --scope \"…\" [--redirect-uri U]… [--launch-url U] [--jwks-url U | --jwks FILE] [--secret] [--practice PIN]… [--json]", clientCreate},
		{"list", "[--json]", clientList},
		{"suspend", "CLIENT_ID", clientStatus(registry.StatusSuspended)},
		{"activate", "CLIENT_ID", clientStatus(registry.StatusActive)},
	}, args)
}

func clientCreate(ctx context.Context, e *env, lead *flag.FlagSet, args []string) error {
	fs := newFlagSet("client create", e)
	var sf storeFlags
	sf.register(fs, e)
	var spec registry.ClientSpec
	var redirects, practices multiFlag
	var jwksFile string
	fs.StringVar(&spec.Name, "name", "", "the app's name, as users see it on the approval page")
	kind := fs.String("kind", "", "public (browser or mobile app), confidential (app with a back end: --secret or keys) or backend (client_credentials: keys, or --secret for internal integrations)")
	fs.StringVar(&spec.Scope, "scope", "", `the scopes the client may be granted, space-separated (SMART v1 "patient/*.read" or v2 "patient/*.rs", never both)`)
	fs.StringVar(&spec.SMARTVersion, "smart-version", "", "v1 or v2, when --scope has no resource scope to tell")
	fs.Var(&redirects, "redirect-uri", "an allowed redirect URI (repeatable; at least one for public and confidential clients)")
	fs.StringVar(&spec.LaunchURL, "launch-url", "", "the app's EHR launch URL")
	fs.StringVar(&spec.JWKSURL, "jwks-url", "", "URL of the client's JWK Set (public keys for private_key_jwt)")
	fs.StringVar(&jwksFile, "jwks", "", "file holding the client's JWK Set (public keys only)")
	fs.BoolVar(&spec.Secret, "secret", false, "generate a client secret (shown once); backend clients then use client_secret_basic")
	fs.Var(&practices, "practice", "PIN of a practice that consents to the app (repeatable)")
	fs.BoolVar(&spec.Dev, "dev", false, "development mode: accept http and loopback or private hosts in URLs")
	asJSON := fs.Bool("json", false, `print {"client_id": …, "client_secret": …} as JSON`)
	if _, err := parseAction(fs, lead, args, 0); err != nil {
		return err
	}
	spec.Kind = registry.ClientKind(*kind)
	spec.RedirectURIs, spec.Practices = redirects, practices
	if jwksFile != "" {
		data, err := readSmallFile(jwksFile, 1<<20)
		if err != nil {
			return fmt.Errorf("--jwks: %w", err)
		}
		spec.JWKS = data
	}
	return withRegistry(ctx, e, &sf, func(reg *registry.Registry) error {
		c, secret, err := reg.CreateClient(ctx, spec)
		if err != nil {
			return flagErrors(err)
		}
		if *asJSON {
			out := struct {
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret,omitempty"`
			}{c.ID, secret}
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "created %s client %q (%s, SMART %s, %s)\n", c.Kind, c.Name, c.Type, c.SMARTVersion, c.Status)
		fmt.Fprintf(e.stdout, "client_id:     %s\n", c.ID)
		if secret != "" {
			fmt.Fprintf(e.stdout, "client_secret: %s\n", secret)
			fmt.Fprintln(e.stdout, "Save the secret now: only its hash is kept, and it cannot be shown again.")
		}
		return nil
	})
}

func clientList(ctx context.Context, e *env, lead *flag.FlagSet, args []string) error {
	fs := newFlagSet("client list", e)
	var sf storeFlags
	sf.register(fs, e)
	asJSON := fs.Bool("json", false, "print the clients as a JSON array")
	if _, err := parseAction(fs, lead, args, 0); err != nil {
		return err
	}
	return withRegistry(ctx, e, &sf, func(reg *registry.Registry) error {
		clients, err := reg.ListClients(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, clients)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tSTATUS\tKIND\tTYPE\tSMART\tNAME")
		for _, c := range clients {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Status, c.Kind, c.Type, c.SMARTVersion, c.Name)
		}
		return tw.Flush()
	})
}

func clientStatus(s registry.Status) actionFunc {
	return func(ctx context.Context, e *env, lead *flag.FlagSet, args []string) error {
		verb := map[registry.Status]string{registry.StatusSuspended: "suspend", registry.StatusActive: "activate"}[s]
		fs := newFlagSet("client "+verb, e)
		var sf storeFlags
		sf.register(fs, e)
		pos, err := parseAction(fs, lead, args, 1)
		if err != nil {
			return err
		}
		return withRegistry(ctx, e, &sf, func(reg *registry.Registry) error {
			c, err := reg.SetClientStatus(ctx, pos[0], s)
			if errors.Is(err, registry.ErrNotFound) {
				return fmt.Errorf("no client has id %q", pos[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "client %s (%s) is %s\n", c.ID, c.Name, c.Status)
			return nil
		})
	}
}

// The rest is shared by the client, user and practice commands.

// actionFunc runs one action of a command; lead holds the flags given
// before the action's name (fhirgraph client --data D create …).
type actionFunc func(ctx context.Context, e *env, lead *flag.FlagSet, args []string) error

// action is one verb of a command that has several (client create, …).
type action struct {
	name, usage string
	run         actionFunc
}

// runActions dispatches args to the named action. Store flags may come
// before the action's name as well as after it.
func runActions(ctx context.Context, e *env, cmd string, actions []action, args []string) error {
	lead := newFlagSet(cmd, e)
	var sf storeFlags
	sf.register(lead, e)
	lead.Usage = func() {
		fmt.Fprintf(e.stderr, "usage:\n")
		for _, a := range actions {
			fmt.Fprintf(e.stderr, "  fhirgraph %s %s %s\n", cmd, a.name, a.usage)
		}
		fmt.Fprintf(e.stderr, "Run fhirgraph %s <action> -h for its flags.\n", cmd)
	}
	if err := lead.Parse(args); err != nil {
		return err
	}
	var names []string
	for _, a := range actions {
		if lead.NArg() > 0 && lead.Arg(0) == a.name {
			return a.run(ctx, e, lead, lead.Args()[1:])
		}
		names = append(names, a.name)
	}
	lead.Usage()
	if lead.NArg() == 0 {
		return fmt.Errorf("%s needs an action: %s", cmd, strings.Join(names, ", "))
	}
	return fmt.Errorf("unknown %s action %q (want %s)", cmd, lead.Arg(0), strings.Join(names, ", "))
}

// parseAction parses an action's flags, which may come before, between
// and after its want positional arguments, after those given before the
// action's name.
func parseAction(fs *flag.FlagSet, lead *flag.FlagSet, args []string, want int) ([]string, error) {
	var err error
	lead.Visit(func(f *flag.Flag) {
		if e := fs.Set(f.Name, f.Value.String()); e != nil && err == nil {
			err = fmt.Errorf("-%s: %w", f.Name, e)
		}
	})
	if err != nil {
		return nil, err
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != want {
		fs.Usage()
		if want == 0 {
			return nil, fmt.Errorf("%s takes no arguments, got %q", fs.Name(), pos)
		}
		return nil, fmt.Errorf("%s takes %d argument(s), got %q", fs.Name(), want, pos)
	}
	return pos, nil
}

// withRegistry opens the store and runs f on its registry.
func withRegistry(ctx context.Context, e *env, sf *storeFlags, f func(*registry.Registry) error) error {
	st, _, err := sf.openWithLog(ctx, e)
	if err != nil {
		return err
	}
	err = f(registry.New(st, registry.Options{}))
	if cerr := st.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close store: %w", cerr)
	}
	return err
}

// fieldFlags names the flag that sets each registry field.
var fieldFlags = map[string]string{
	"client_name": "name", "redirect_uris": "redirect-uri", "launch_url": "launch-url", "jwks_uri": "jwks-url",
	"smart_version": "smart-version", "practices": "practice",
}

// cliValidationError shows a registry validation error by flag.
type cliValidationError struct{ *registry.ValidationError }

func (e cliValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid %s:", e.What)
	for _, p := range e.Problems {
		name := p.Field
		if f, ok := fieldFlags[name]; ok {
			name = f
		}
		fmt.Fprintf(&b, "\n  --%s: %s", name, p.Message)
	}
	return b.String()
}

func (e cliValidationError) Unwrap() error { return e.ValidationError }

// flagErrors reports a validation error by flag, and others as they are.
func flagErrors(err error) error {
	var ve *registry.ValidationError
	if errors.As(err, &ve) {
		return cliValidationError{ve}
	}
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}
