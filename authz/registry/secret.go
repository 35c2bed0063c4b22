package registry

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// KDF is the cost of the password hash (argon2id, RFC 9106). Hashes carry
// their parameters (PHC string format), so changing these affects new
// hashes only; stored ones keep verifying with the parameters they were
// made with.
type KDF struct {
	Memory  uint32 // KiB, 8 to 1 GiB
	Time    uint32 // passes, 1 to 16
	Threads uint8  // lanes, 1 to 16
}

// valid reports whether k is within the bounds verification accepts.
func (k KDF) valid() bool {
	return k.Memory >= 8 && k.Memory <= 1<<20 && k.Time >= 1 && k.Time <= 16 && k.Threads >= 1 && k.Threads <= 16
}

// DefaultKDF is OWASP's first recommended argon2id configuration (19 MiB,
// 2 passes, 1 lane): memory-hard enough that guessing on GPUs gains little,
// while one verification stays a few tens of milliseconds on one core.
var DefaultKDF = KDF{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// maxSecretLen bounds what is hashed: a longer password is refused at
	// creation, and at login costs the same as a wrong one.
	maxSecretLen = 256
)

// hasher hashes and verifies passwords and client secrets. At most slots
// hashes run at once (each holds Memory KiB), so a burst of logins queues
// instead of exhausting memory.
type hasher struct {
	kdf   KDF
	slots chan struct{}
	calls atomic.Int64 // argon2 evaluations, for tests of the timing paths

	dummyOnce sync.Once
	dummy     string
}

func newHasher(k KDF) *hasher {
	if !k.valid() { // the zero KDF, or one whose hashes would never verify
		k = DefaultKDF
	}
	return &hasher{kdf: k, slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
}

func (h *hasher) key(ctx context.Context, secret, salt []byte, k KDF) ([]byte, error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.slots }()
	h.calls.Add(1)
	return argon2.IDKey(secret, salt, k.Time, k.Memory, k.Threads, keyLen), nil
}

// hash returns the PHC string of secret:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>.
func (h *hasher) hash(ctx context.Context, secret string) (string, error) {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key, err := h.key(ctx, []byte(secret), salt, h.kdf)
	if err != nil {
		return "", err
	}
	return h.encode(salt, key), nil
}

func (h *hasher) encode(salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.kdf.Memory, h.kdf.Time, h.kdf.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// verify reports whether secret matches the PHC string encoded, comparing
// in constant time. An empty or malformed encoded verifies against a dummy
// hash, so that every refusal costs one full evaluation.
func (h *hasher) verify(ctx context.Context, secret, encoded string) (bool, error) {
	k, salt, want, err := parsePHC(encoded)
	usable := err == nil && len(secret) <= maxSecretLen
	if !usable {
		var derr error
		if k, salt, want, derr = parsePHC(h.dummyHash()); derr != nil {
			k = h.kdf
		}
		secret = secret[:min(len(secret), maxSecretLen)]
	}
	got, err := h.key(ctx, []byte(secret), salt, k)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1 && usable, nil
}

// dummyHash is what unknown users and clients are checked against: a
// hash with the current parameters whose key is random, so that no secret
// matches it, made without an evaluation (the first refusal costs what
// later ones do).
func (h *hasher) dummyHash() string {
	h.dummyOnce.Do(func() {
		salt, key := make([]byte, saltLen), make([]byte, keyLen)
		rand.Read(salt)
		rand.Read(key)
		h.dummy = h.encode(salt, key)
	})
	return h.dummy
}

var errPHC = errors.New("not an argon2id hash")

func parsePHC(s string) (KDF, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return KDF{}, nil, nil, errPHC
	}
	var k KDF
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &k.Memory, &k.Time, &k.Threads); n != 3 || err != nil {
		return KDF{}, nil, nil, errPHC
	}
	// Bounds keep a tampered record from making verification hang or
	// allocate without limit.
	if !k.valid() {
		return KDF{}, nil, nil, errPHC
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) != keyLen {
		return KDF{}, nil, nil, errPHC
	}
	return k, salt, key, nil
}

// randomToken is n random bytes, base64url without padding: URL-safe ids
// and secrets.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
