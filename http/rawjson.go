package http

import "encoding/json"

// rawJSON embeds stored JSON as it is.
func rawJSON(b []byte) json.RawMessage { return json.RawMessage(b) }
