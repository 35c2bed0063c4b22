// Package graph will serve the GraphQL API generated from the US Core
// profiles (POST /graphql), under the same authorization as FHIR REST.
package graph
