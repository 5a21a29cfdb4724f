/*
 * Shared-secret challenge-response for the Kona protocol (see the
 * "Handshake" section of kona-proto.h).  HMAC-SHA256 through GLib.
 */
#ifndef KONA_AUTH_H
#define KONA_AUTH_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "kona-proto.h"

#define KONA_SECRET_MIN 16      /* bytes; shorter secrets are refused */
#define KONA_SECRET_MAX 4096

typedef enum KonaAuthRole {
    KONA_AUTH_CLIENT,           /* the MAC the client sends in AUTH */
    KONA_AUTH_SERVER,           /* the MAC the server answers with */
} KonaAuthRole;

/* HMAC-SHA256(secret, role label || server_nonce || client_nonce). */
void kona_auth_mac(const uint8_t *secret, size_t secret_len, KonaAuthRole role,
                   const uint8_t server_nonce[KONA_NONCE_SIZE],
                   const uint8_t client_nonce[KONA_NONCE_SIZE],
                   uint8_t mac[KONA_MAC_SIZE]);

/* Constant-time comparison, so a wrong MAC leaks no timing. */
bool kona_auth_equal(const uint8_t *a, const uint8_t *b, size_t len);

/*
 * Read a secret from @path (one trailing newline is stripped).  Refuses
 * files other users can read, and secrets shorter than KONA_SECRET_MIN.
 */
GBytes *kona_auth_load_secret(const char *path, GError **errp);

/*
 * The volume key of volume @name for holders of @secret:
 * HMAC-SHA256(secret, "kona-volume:" || name), its first 16 bytes (see
 * "Named volumes" in kona-proto.h).
 */
void kona_auth_volume_key(const uint8_t *secret, size_t secret_len,
                          const char *name, uint8_t key[KONA_KEY_SIZE]);

/* Fill @buf with bytes from the kernel's CSPRNG. */
void kona_random_bytes(void *buf, size_t len);

#endif /* KONA_AUTH_H */
