/* fuzz_config.c - libFuzzer target: the configuration reader on any text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	char *text = malloc(size + 1);
	struct config *cfg;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	cfg = config_load_string("fuzz.conf", text, err, sizeof(err));
	/* Either a configuration or a "file:line: message", never both or neither. */
	if ((cfg == NULL) != (err[0] != '\0' && strstr(err, ": ") != NULL))
		abort();
	config_free(cfg);
	free(text);
	return 0;
}
