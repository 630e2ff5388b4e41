/*
 * narhub_identity: a Mosquitto 2.0 plugin that binds an MQTT session to its TLS certificate.
 *
 * Mosquitto's `use_identity_as_username` makes the certificate's CN the MQTT username, but
 * leaves the client id free: any valid certificate may connect with another client's id,
 * which disconnects that client ("already connected, closing old connection"), publishes
 * its Will, and with a clean start discards its session and queued messages (MQTT 5.0
 * section 3.1.4: the server "MUST close the existing Network Connection" of a client id
 * that connects again). This plugin replaces `use_identity_as_username`: on CONNECT
 * (MOSQ_EVT_BASIC_AUTH, called before the session with that id is looked up) it reads the
 * CN of the verified client certificate and
 *
 *   - refuses a CONNECT username that is not the CN (0x87 Not authorized);
 *   - accepts the client id only when it is the CN, or the CN followed by one of the
 *     configured suffixes (`plugin_opt_suffixes`, a hub's second and third connections:
 *     "-cmd -renew"), or, for the service names in `plugin_opt_services` (receivers and
 *     operators that share one certificate name), the CN followed by "-" and more;
 *   - sets the username to the CN, so the ACL's %u patterns apply as before.
 *
 * Plugin API: mosquitto_plugin.h and mosquitto_broker.h, version 5 (Mosquitto 2.0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define MAX_NAMES 16
#define MAX_CN 64

static mosquitto_plugin_id_t *plugin_id;
static char *suffixes[MAX_NAMES];
static int suffix_count;
static char *services[MAX_NAMES];
static int service_count;

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

static int split(const char *value, char **out)
{
	int count = 0;
	char *copy = strdup(value);
	char *save = NULL;
	if(copy == NULL) return 0;
	for(char *word = strtok_r(copy, " ,", &save); word && count < MAX_NAMES;
			word = strtok_r(NULL, " ,", &save)){
		out[count++] = strdup(word);
	}
	free(copy);
	return count;
}

/* The subject CN of the client's verified certificate, or 0 when it has none usable. */
static int certificate_cn(const struct mosquitto *client, char *cn, size_t size)
{
	X509 *cert = mosquitto_client_certificate(client);
	int ok = 0;
	if(cert == NULL) return 0;
	X509_NAME *name = X509_get_subject_name(cert);
	int index = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	/* Exactly one CN: a second one would make the identity ambiguous. */
	if(index >= 0 && X509_NAME_get_index_by_NID(name, NID_commonName, index) == -1){
		ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
		int length = ASN1_STRING_length(data);
		const unsigned char *bytes = ASN1_STRING_get0_data(data);
		if(length > 0 && (size_t)length < size && memchr(bytes, 0, (size_t)length) == NULL){
			memcpy(cn, bytes, (size_t)length);
			cn[length] = '\0';
			ok = 1;
		}
	}
	X509_free(cert);
	return ok;
}

static int id_allowed(const char *cn, const char *id)
{
	size_t n = strlen(cn);
	if(strcmp(id, cn) == 0) return 1;
	if(strncmp(id, cn, n) != 0) return 0;
	for(int i = 0; i < suffix_count; i++){
		if(strcmp(id + n, suffixes[i]) == 0) return 1;
	}
	for(int i = 0; i < service_count; i++){
		if(strcmp(cn, services[i]) == 0 && id[n] == '-' && id[n + 1] != '\0') return 1;
	}
	return 0;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	char cn[MAX_CN];
	const char *id = mosquitto_client_id(ed->client);
	(void)event;
	(void)userdata;
	if(!certificate_cn(ed->client, cn, sizeof(cn))){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "narhub_identity: refused a client without one usable certificate CN");
		return MOSQ_ERR_AUTH;
	}
	if(ed->username != NULL && strcmp(ed->username, cn) != 0){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "narhub_identity: refused certificate %s: username is another name", cn);
		return MOSQ_ERR_AUTH;
	}
	if(id == NULL || !id_allowed(cn, id)){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "narhub_identity: refused client id %s for certificate %s", id ? id : "(none)", cn);
		return MOSQ_ERR_AUTH;
	}
	return mosquitto_set_username(ed->client, cn) == MOSQ_ERR_SUCCESS ? MOSQ_ERR_SUCCESS : MOSQ_ERR_AUTH;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	plugin_id = identifier;
	for(int i = 0; i < option_count; i++){
		if(strcmp(options[i].key, "suffixes") == 0){
			suffix_count = split(options[i].value, suffixes);
		}else if(strcmp(options[i].key, "services") == 0){
			service_count = split(options[i].value, services);
		}
	}
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	for(int i = 0; i < suffix_count; i++) free(suffixes[i]);
	for(int i = 0; i < service_count; i++) free(services[i]);
	suffix_count = service_count = 0;
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
}
