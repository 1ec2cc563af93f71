#include <sqlite3.h>

#include <filesystem>

#include "store/store.h"

namespace stele::store {
namespace {

// Schema migrations, applied in order; PRAGMA user_version = how many ran.
const char* const kMigrations[] = {
    "CREATE TABLE docs (collection TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (collection, key)) WITHOUT ROWID;"
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);",
};

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  sqlite3_stmt* get() { return s_; }
  void bind(int i, const std::string& v) { sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT); }
  void bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  int step() { return sqlite3_step(s_); }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::string text(int col) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, sqlite3_column_bytes(s_, col)) : std::string();
  }
  int64_t i64(int col) { return sqlite3_column_int64(s_, col); }

 private:
  sqlite3_stmt* s_ = nullptr;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, size_t max_events) : db_(db), max_events_(max_events) {}
  ~SqliteStore() override { sqlite3_close(db_); }

  Result<void> migrate() {
    if (auto r = exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"); !r) return r;
    Stmt v(db_, "PRAGMA user_version");
    v.step();
    int have = int(v.i64(0));
    int want = int(sizeof kMigrations / sizeof kMigrations[0]);
    if (have > want) return fail("state store schema version " + std::to_string(have) + " is newer than this binary (" + std::to_string(want) + ")");
    for (int i = have; i < want; ++i) {
      std::string sql = std::string("BEGIN;") + kMigrations[i] + "PRAGMA user_version=" + std::to_string(i + 1) + ";COMMIT;";
      if (auto r = exec(sql); !r) return r;
    }
    last_event_ = query_last_event();
    return {};
  }

  Result<void> apply(const std::vector<Write>& writes, const std::vector<Json>& events,
                     std::vector<int64_t>* event_ids) override {
    std::vector<int64_t> ids;
    if (auto r = in_transaction([&] { return apply_in_tx(writes, events, &ids, false); }); !r) return r;
    if (!ids.empty()) last_event_ = ids.back();
    if (event_ids) event_ids->insert(event_ids->end(), ids.begin(), ids.end());
    return {};
  }

  Result<void> import(const std::vector<Write>& writes, const std::vector<Json>& events) override {
    if (auto r = in_transaction([&] { return apply_in_tx(writes, events, nullptr, true); }); !r) return r;
    if (!events.empty()) last_event_ = query_last_event();
    return {};
  }

  Result<std::vector<std::string>> collections() override {
    Stmt s(db_, "SELECT DISTINCT collection FROM docs ORDER BY collection");
    std::vector<std::string> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(s.text(0));
    if (rc != SQLITE_DONE) return fail(std::string("state store read failed: ") + sqlite3_errmsg(db_));
    return out;
  }

  Result<std::vector<std::pair<std::string, std::string>>> list(const std::string& collection) override {
    Stmt s(db_, "SELECT key, value FROM docs WHERE collection = ? ORDER BY key");
    s.bind(1, collection);
    std::vector<std::pair<std::string, std::string>> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.emplace_back(s.text(0), s.text(1));
    if (rc != SQLITE_DONE) return fail(std::string("state store read failed: ") + sqlite3_errmsg(db_));
    return out;
  }

  Result<std::optional<std::string>> get(const std::string& collection, const std::string& key) override {
    Stmt s(db_, "SELECT value FROM docs WHERE collection = ? AND key = ?");
    s.bind(1, collection);
    s.bind(2, key);
    int rc = s.step();
    if (rc == SQLITE_ROW) return std::optional<std::string>(s.text(0));
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    return fail(std::string("state store read failed: ") + sqlite3_errmsg(db_));
  }

  Result<std::vector<Json>> events_since(int64_t after, size_t limit) override {
    Stmt s(db_, "SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT ?");
    s.bind(1, after);
    s.bind(2, static_cast<int64_t>(limit));
    std::vector<Json> out;
    while (s.step() == SQLITE_ROW) {
      auto parsed = parse_json(s.text(1));
      if (!parsed) continue;
      Json j = std::move(*parsed);
      j["id"] = s.i64(0);
      out.push_back(std::move(j));
    }
    return out;
  }

  int64_t last_event_id() override { return last_event_; }

  // VACUUM INTO reads one transaction's view: a consistent, compact copy.
  Result<void> snapshot(const std::string& path) override {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return fail("snapshot target " + path + " already exists");
    Stmt s(db_, "VACUUM INTO ?");
    s.bind(1, path);
    if (s.step() != SQLITE_DONE)
      return fail("state store snapshot to " + path + " failed: " + sqlite3_errmsg(db_));
    return {};
  }

 private:
  Result<void> exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = std::string("state store: ") + (err ? err : "error");
      sqlite3_free(err);
      return fail(msg);
    }
    return {};
  }

  template <class Body>
  Result<void> in_transaction(Body body) {
    if (auto r = exec("BEGIN IMMEDIATE"); !r) return r;
    auto r = body();
    if (r) r = exec("COMMIT");
    if (!r) exec("ROLLBACK");
    return r;
  }

  // keep_ids: each event carries its "id" (import); else ids are assigned.
  Result<void> apply_in_tx(const std::vector<Write>& writes, const std::vector<Json>& events,
                           std::vector<int64_t>* event_ids, bool keep_ids) {
    Stmt put(db_, "INSERT OR REPLACE INTO docs (collection, key, value) VALUES (?, ?, ?)");
    Stmt del(db_, "DELETE FROM docs WHERE collection = ? AND key = ?");
    for (const auto& w : writes) {
      Stmt& s = w.value ? put : del;
      s.bind(1, w.collection);
      s.bind(2, w.key);
      if (w.value) s.bind(3, *w.value);
      if (s.step() != SQLITE_DONE) return fail(std::string("state store write failed: ") + sqlite3_errmsg(db_));
      s.reset();
    }
    Stmt ins(db_, keep_ids ? "INSERT OR REPLACE INTO events (body, id) VALUES (?, ?)" : "INSERT INTO events (body) VALUES (?)");
    for (const auto& e : events) {
      if (keep_ids) {
        Json body = e;
        body.erase("id");
        ins.bind(1, body.dump());
        ins.bind(2, e.value("id", int64_t(0)));
      } else {
        ins.bind(1, e.dump());
      }
      if (ins.step() != SQLITE_DONE) return fail(std::string("event append failed: ") + sqlite3_errmsg(db_));
      if (event_ids) event_ids->push_back(sqlite3_last_insert_rowid(db_));
      ins.reset();
    }
    if (!events.empty() && ++appends_ % 1000 == 0) prune_events();
    return {};
  }

  void prune_events() {
    Stmt s(db_, "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?");
    s.bind(1, static_cast<int64_t>(max_events_));
    s.step();
  }

  int64_t query_last_event() {
    Stmt s(db_, "SELECT COALESCE(MAX(id), 0) FROM events");
    s.step();
    int64_t v = s.i64(0);
    // AUTOINCREMENT keeps ids unique even after pruning: take the sequence too.
    Stmt q(db_, "SELECT seq FROM sqlite_sequence WHERE name = 'events'");
    if (q.step() == SQLITE_ROW) v = std::max(v, q.i64(0));
    return v;
  }

  sqlite3* db_;
  size_t max_events_;
  int64_t last_event_ = 0;
  uint64_t appends_ = 0;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, size_t max_events) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string msg = "cannot open state store " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return fail(msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto s = std::make_unique<SqliteStore>(db, max_events);
  if (auto r = s->migrate(); !r) return fail(r.error());
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace stele::store
