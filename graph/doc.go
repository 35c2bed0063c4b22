// Package graph serves the GraphQL API generated from the US Core profiles
// (POST and GET /graphql), under the same authorization as FHIR REST: root
// reads and lists, and Patient.ObservationList, go through the REST search
// engine (fhir/search) with the filter authz decides (see access.go).
//
// The schema is schema/fhir.graphqls; graph/generated and graph/model are
// generated from it by gqlgen (gqlgen.yml) and never edited by hand; the
// resolvers in fhir.resolvers.go stay one line each.
package graph

//go:generate go run ./internal/gqlgen
