// Package authz owns authorization: the SMART on FHIR authorization
// server (authz/smart), scope parsing (authz/scope), the Casbin policy
// (authz/policy), tokens and keys (authz/token) and the registry of
// clients, users and practices (authz/registry).
//
// The Guard in this package is what the APIs ask, once per request:
// Authenticate turns the request's bearer token into a Principal, and
// Decide answers whether that principal may do one interaction on one
// resource type, with the Filter (patient compartments, practices,
// compiled granular queries) the API pushes into every store query the
// interaction makes. The APIs never decide authorization themselves, and
// never drop rows after a query.
package authz
