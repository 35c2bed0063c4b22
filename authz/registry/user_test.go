package registry

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

func TestUsers(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		r := newTestRegistry(st)
		putResource(t, st, "Patient", "p1")
		putResource(t, st, "Practitioner", "dr1")
		for _, pin := range []string{"ONC01", "PEDS2"} {
			if _, err := r.CreatePractice(ctx, PracticeSpec{Name: pin, PIN: pin}); err != nil {
				t.Fatal(err)
			}
		}
		const pw = "correct horse battery"
		pat, err := r.CreateUser(ctx, UserSpec{Username: " Ada@Example.com ", Password: pw, Kind: UserPatient, Patient: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		if pat.Username != "ada@example.com" || pat.Patient != "p1" || pat.Status != StatusActive || pat.Created.IsZero() {
			t.Errorf("patient user %+v", pat)
		}
		dr, err := r.CreateUser(ctx, UserSpec{Username: "drsmith", Password: pw, Kind: UserPractitioner, Practitioner: "dr1", Practices: []string{"onc01", "PEDS2", "ONC01"}})
		if err != nil {
			t.Fatal(err)
		}
		if dr.Practitioner != "dr1" || strings.Join(dr.Practices, ",") != "ONC01,PEDS2" {
			t.Errorf("practitioner user %+v", dr)
		}
		if _, err := r.CreateUser(ctx, UserSpec{Username: "frontdesk", Password: pw, Kind: UserStaff, Practices: []string{"PEDS2"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.CreateUser(ctx, UserSpec{Username: "ADA@example.com", Password: "another password", Kind: UserStaff, Practices: []string{"PEDS2"}}); !errors.Is(err, ErrExists) {
			t.Errorf("a second user named ada@example.com: %v, want ErrExists", err)
		}
		for _, id := range []string{"ada@example.com", "drsmith", "frontdesk"} {
			if rec := rawRecord(t, st, usersDef, id); bytes.Contains(rec.Data, []byte(pw)) || !bytes.Contains(rec.Data, []byte(`"password_hash":"$argon2id$`)) {
				t.Errorf("stored user %s: %s", id, rec.Data)
			}
		}

		u, err := r.Login(ctx, "ADA@example.com", pw)
		if err != nil || u.Username != "ada@example.com" || u.Patient != "p1" {
			t.Errorf("Login = %+v, %v", u, err)
		}
		if got, err := r.GetUser(ctx, "DrSmith"); err != nil || got.Practitioner != "dr1" {
			t.Errorf("GetUser = %+v, %v", got, err)
		}
		if _, err := r.GetUser(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetUser of an unknown user: %v", err)
		}
		all, err := r.ListUsers(ctx)
		if err != nil || len(all) != 3 || all[0].Username != "ada@example.com" {
			t.Errorf("ListUsers = %+v, %v", all, err)
		}
		byPatient, err := r.UsersByPatient(ctx, "p1")
		if err != nil || len(byPatient) != 1 || byPatient[0].Username != "ada@example.com" {
			t.Errorf("UsersByPatient = %+v, %v", byPatient, err)
		}
		byPractitioner, err := r.UsersByPractitioner(ctx, "dr1")
		if err != nil || len(byPractitioner) != 1 {
			t.Errorf("UsersByPractitioner = %+v, %v", byPractitioner, err)
		}
		members, err := r.UsersByPractice(ctx, "peds2")
		if err != nil || len(members) != 2 || members[0].Username != "drsmith" || members[1].Username != "frontdesk" {
			t.Errorf("UsersByPractice = %+v, %v", members, err)
		}

		// Every refusal is the same error after one hash evaluation.
		for _, tc := range []struct{ name, user, password string }{
			{"wrong password", "drsmith", "wrong password"},
			{"empty password", "drsmith", ""},
			{"unknown user", "nobody", pw},
			{"malformed username", "x y\x00", pw},
			{"overlong password", "drsmith", strings.Repeat("p", 100000)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := r.hasher.calls.Load()
				u, err := r.Login(ctx, tc.user, tc.password)
				if !errors.Is(err, ErrBadCredentials) || err.Error() != ErrBadCredentials.Error() || u.Username != "" {
					t.Errorf("Login = %+v, %v; want exactly ErrBadCredentials", u, err)
				}
				if n := r.hasher.calls.Load() - before; n != 1 {
					t.Errorf("%d hash evaluations, want 1", n)
				}
			})
		}

		if _, err := r.SetUserStatus(ctx, "drsmith", StatusSuspended); err != nil {
			t.Fatal(err)
		}
		if u, err := r.Login(ctx, "drsmith", pw); !errors.Is(err, ErrNotActive) || u.Username != "drsmith" {
			t.Errorf("Login of a suspended user = %+v, %v", u, err)
		}
		if _, err := r.Login(ctx, "drsmith", "wrong password"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("a wrong password of a suspended user: %v, want ErrBadCredentials", err)
		}
	})
}

func TestUserValidation(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		r := newTestRegistry(st)
		putResource(t, st, "Patient", "p1")
		putResource(t, st, "Practitioner", "dr1")
		if _, err := r.CreatePractice(ctx, PracticeSpec{Name: "Onc", PIN: "ONC01"}); err != nil {
			t.Fatal(err)
		}
		patient := UserSpec{Username: "ada", Password: "long enough", Kind: UserPatient, Patient: "p1"}
		practitioner := UserSpec{Username: "drsmith", Password: "long enough", Kind: UserPractitioner, Practitioner: "dr1", Practices: []string{"ONC01"}}
		with := func(s UserSpec, f func(*UserSpec)) UserSpec { f(&s); return s }
		for _, tc := range []struct {
			name   string
			spec   UserSpec
			fields []string
		}{
			{"username too short", with(patient, func(s *UserSpec) { s.Username = "ab" }), []string{"username"}},
			{"username too long", with(patient, func(s *UserSpec) { s.Username = strings.Repeat("a", 65) }), []string{"username"}},
			{"username with a space", with(patient, func(s *UserSpec) { s.Username = "ada lovelace" }), []string{"username"}},
			{"username starting with a dot", with(patient, func(s *UserSpec) { s.Username = ".ada" }), []string{"username"}},
			{"password too short", with(patient, func(s *UserSpec) { s.Password = "short" }), []string{"password"}},
			{"password too long", with(patient, func(s *UserSpec) { s.Password = strings.Repeat("p", 257) }), []string{"password"}},
			{"password with a control character", with(patient, func(s *UserSpec) { s.Password = "long\nenough" }), []string{"password"}},
			{"password not UTF-8", with(patient, func(s *UserSpec) { s.Password = "long enough\xff" }), []string{"password"}},
			{"password is the username", with(patient, func(s *UserSpec) { s.Username = "adalovelace"; s.Password = "AdaLovelace" }), []string{"password"}},
			{"unknown kind", with(patient, func(s *UserSpec) { s.Kind = "admin" }), []string{"kind"}},
			{"patient without Patient", with(patient, func(s *UserSpec) { s.Patient = "" }), []string{"patient"}},
			{"patient with a malformed id", with(patient, func(s *UserSpec) { s.Patient = "p 1" }), []string{"patient"}},
			{"patient with an unknown Patient", with(patient, func(s *UserSpec) { s.Patient = "p2" }), []string{"patient"}},
			{"patient with a Practitioner", with(patient, func(s *UserSpec) { s.Practitioner = "dr1" }), []string{"practitioner"}},
			{"patient with practices", with(patient, func(s *UserSpec) { s.Practices = []string{"ONC01"} }), []string{"practices"}},
			{"practitioner without Practitioner", with(practitioner, func(s *UserSpec) { s.Practitioner = "" }), []string{"practitioner"}},
			{"practitioner with an unknown Practitioner", with(practitioner, func(s *UserSpec) { s.Practitioner = "dr9" }), []string{"practitioner"}},
			{"practitioner without practice", with(practitioner, func(s *UserSpec) { s.Practices = nil }), []string{"practices"}},
			{"practitioner with an unknown practice", with(practitioner, func(s *UserSpec) { s.Practices = []string{"ONC01", "NOPE1"} }), []string{"practices"}},
			{"practitioner with a Patient", with(practitioner, func(s *UserSpec) { s.Patient = "p1" }), []string{"patient"}},
			{"staff with a Practitioner", with(practitioner, func(s *UserSpec) { s.Kind = UserStaff }), []string{"practitioner"}},
			{"staff without practice", UserSpec{Username: "desk", Password: "long enough", Kind: UserStaff}, []string{"practices"}},
			{"unknown status", with(patient, func(s *UserSpec) { s.Status = "banned" }), []string{"status"}},
			{"everything wrong", UserSpec{Username: "?", Password: "x", Kind: UserPatient}, []string{"username", "password", "patient"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := r.CreateUser(ctx, tc.spec)
				got := fields(t, err)
				if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
					t.Errorf("problems on %v, want %v (%v)", got, tc.fields, err)
				}
				if tc.spec.Password != "" && len(tc.spec.Password) > 3 && strings.Contains(err.Error(), tc.spec.Password) {
					t.Errorf("the error quotes the password: %v", err)
				}
			})
		}
		if all, err := r.ListUsers(ctx); err != nil || len(all) != 0 {
			t.Errorf("refused creates wrote %d users (%v)", len(all), err)
		}
	})
}
