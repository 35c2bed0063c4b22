// Package authz will own authorization: the SMART on FHIR authorization
// server and the Casbin policy that both APIs ask for decisions.
package authz
