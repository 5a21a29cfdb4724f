/*
 * Shared-secret challenge-response (HMAC-SHA256) and random nonces.
 */
#include "kona-auth.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

static const char *const role_label[] = {
    [KONA_AUTH_CLIENT] = "kona-auth-client",
    [KONA_AUTH_SERVER] = "kona-auth-server",
};

void kona_auth_mac(const uint8_t *secret, size_t secret_len, KonaAuthRole role,
                   const uint8_t server_nonce[KONA_NONCE_SIZE],
                   const uint8_t client_nonce[KONA_NONCE_SIZE],
                   uint8_t mac[KONA_MAC_SIZE])
{
    GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, secret, secret_len);
    gsize len = KONA_MAC_SIZE;

    g_hmac_update(h, (const guchar *)role_label[role],
                  strlen(role_label[role]));
    g_hmac_update(h, server_nonce, KONA_NONCE_SIZE);
    g_hmac_update(h, client_nonce, KONA_NONCE_SIZE);
    g_hmac_get_digest(h, mac, &len);
    g_hmac_unref(h);
}

void kona_auth_volume_key(const uint8_t *secret, size_t secret_len,
                          const char *name, uint8_t key[KONA_KEY_SIZE])
{
    static const char label[] = "kona-volume:";
    GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, secret, secret_len);
    uint8_t mac[KONA_MAC_SIZE];
    gsize len = sizeof(mac);

    g_hmac_update(h, (const guchar *)label, strlen(label));
    g_hmac_update(h, (const guchar *)name, strlen(name));
    g_hmac_get_digest(h, mac, &len);
    g_hmac_unref(h);
    memcpy(key, mac, KONA_KEY_SIZE);
}

bool kona_auth_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    uint8_t diff = 0;

    for (size_t i = 0; i < len; i++) {
        diff |= a[i] ^ b[i];
    }
    return diff == 0;
}

GBytes *kona_auth_load_secret(const char *path, GError **errp)
{
    g_autofree char *data = NULL;
    gsize len;
    struct stat st;

    if (stat(path, &st) < 0) {
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "secret file %s: %s", path, g_strerror(errno));
        return NULL;
    }
    if (st.st_mode & 0077) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_PERM,
                    "secret file %s is accessible by other users "
                    "(chmod 600 it)", path);
        return NULL;
    }
    if (!g_file_get_contents(path, &data, &len, errp)) {
        return NULL;
    }
    if (len && data[len - 1] == '\n') {
        len--;
    }
    if (len < KONA_SECRET_MIN || len > KONA_SECRET_MAX) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "secret in %s must be %d..%d bytes, it has %zu", path,
                    KONA_SECRET_MIN, KONA_SECRET_MAX, (size_t)len);
        return NULL;
    }
    return g_bytes_new(data, len);
}

void kona_random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* getrandom cannot fail on Linux >= 3.17 short of EFAULT */
            g_error("getrandom: %s", g_strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}
