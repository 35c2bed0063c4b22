package portal

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/fhirgraph/fhirgraph/store"
)

// The portal's platform records. Secrets that travel (session cookies,
// link tokens) are never stored as given: a session's record id is the
// hash of its cookie, and a link carries an HMAC the store cannot forge
// without the key record.
var (
	// developersDef: developer accounts (see developer), id = email.
	developersDef = store.CollectionDef{Name: "portal_developers", Keys: []string{"record"}}
	// sessionsDef: browser sessions of developers and staff (see session).
	sessionsDef = store.CollectionDef{Name: "portal_sessions", Keys: []string{"subject"}}
	// linksDef: outstanding verification and reset links (see link), id =
	// the link's nonce; deleted when used.
	linksDef = store.CollectionDef{Name: "portal_links"}
	// keysDef: the HMAC key of links (one record, "links").
	keysDef = store.CollectionDef{Name: "portal_keys"}
	// outboxDef: mail written instead of sent (see Message).
	outboxDef = store.CollectionDef{Name: "portal_outbox", Keys: []string{"to"}}
	// applicationsDef: registration requests (see Application).
	applicationsDef = store.CollectionDef{Name: "portal_applications", Keys: []string{"record", "developer", "status", "org_name", "practices"}}
	// rolesDef: portal roles of staff users (see Roles), id = username.
	rolesDef = store.CollectionDef{Name: "portal_roles", Keys: []string{"record"}}
)

// hashID is the record id of a secret: hex SHA-256.
func hashID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
