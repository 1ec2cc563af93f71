// Tables of the monitoring verbs (stele checks, check list, handler list,
// silence list) from the API's JSON. Pure functions.
#pragma once
#include <cstdint>
#include <string>

#include "cli/table.h"
#include "common/json.h"

namespace stele::cli {

// GET /api/v1/checks/status "states": ENTITY CHECK STATUS STATE OCC AGE
// OUTPUT (its first line, at most 70 columns); silenced states say so in
// STATE ("failing, silenced").
Table check_states_table(const Json& states, int64_t now_ms);
// GET /api/v1/checks "checks": NAME RUNS-ON INTERVAL TIMEOUT HANDLERS COMMAND.
Table checks_table(const Json& checks);
// GET /api/v1/handlers "handlers": NAME TYPE TARGET FILTERS.
Table handlers_table(const Json& handlers);
// GET /api/v1/silences "silences": ID EXPIRES REASON CREATOR.
Table silences_table(const Json& silences, int64_t now_ms);
// "OK", "WARNING", "CRITICAL", "UNKNOWN" for 0..3, else the number.
std::string status_word(int64_t status);

}  // namespace stele::cli
