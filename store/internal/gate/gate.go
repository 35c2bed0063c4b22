// Package gate lets a store engine close cleanly: operations pass the gate
// while they run, and closing waits for those in flight and turns later ones
// away.
package gate

import "sync"

// Gate is open until Close; its zero value is open.
type Gate struct {
	mu     sync.RWMutex
	closed bool
}

// Enter admits an operation, or returns closedErr once the gate is closed.
// An admitted operation must call Leave.
func (g *Gate) Enter(closedErr error) error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return closedErr
	}
	return nil
}

// Leave ends an operation Enter admitted.
func (g *Gate) Leave() { g.mu.RUnlock() }

// Close waits for the operations in flight and closes the gate. It reports
// whether this call closed it (false when it was closed already).
func (g *Gate) Close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	return true
}
