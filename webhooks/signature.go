package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// ContentType is the media type of every delivery: the CloudEvents
// structured mode of the HTTP binding.
const ContentType = "application/cloudevents+json"

// Sign returns the webhook-signature value of a message: "v1," and the
// standard base64 of HMAC-SHA256(key, "<id>.<unix seconds>.<body>"), key
// being SecretKey(secret). It fails only on a malformed secret.
func Sign(secret, id string, at time.Time, body []byte) (string, error) {
	key, err := SecretKey(secret)
	if err != nil {
		return "", err
	}
	return sign(key, id, at.Unix(), body), nil
}

func sign(key []byte, id string, unix int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, unix, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// setHeaders sets the three Standard Webhooks headers of one attempt.
func setHeaders(h http.Header, key []byte, id string, at time.Time, body []byte) {
	unix := at.Unix()
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(unix, 10))
	h.Set(HeaderSignature, sign(key, id, unix, body))
}
