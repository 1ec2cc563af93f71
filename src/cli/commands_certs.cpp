// `stele certs init` and `stele certs node NAME`: a cluster CA and the node
// certificates the API listener, the agent link and the forward input use
// (net/tls_certs.h). Local only: no API call.
#include <iostream>

#include "cli/commands.h"
#include "net/tls_certs.h"

namespace stele::cli {
namespace {

struct CertsArgs {
  std::string dir;
  int days = 0;  // 0: the default of the verb
  bool force = false;
  bool json = false;
  std::string name;
  std::vector<std::string> ips, dns;
};

void print_files(const net::CertificateFiles& f, bool json, const std::string& what) {
  if (json) {
    print_json(Json{{"cert", f.cert}, {"key", f.key}});
    return;
  }
  print_line(what + ": " + f.cert + " (key " + f.key + ", mode 0600)");
}

int run_init(const CertsArgs& a) {
  auto files = net::make_cluster_ca(a.dir, a.days ? a.days : 3650, a.force);
  if (!files) return report(files.error());
  print_files(*files, a.json, "CA");
  return 0;
}

int run_node(const CertsArgs& a) {
  net::NodeCertificateRequest req{a.name, a.ips, a.dns, a.days ? a.days : 825};
  auto files = net::make_node_certificate(a.dir, req);
  if (!files) return report(files.error());
  print_files(*files, a.json, "certificate of " + a.name);
  return 0;
}

ClientCommand& add_certs_verb(ClientCommand& parent, const std::shared_ptr<GlobalFlags>& flags,
                              const std::string& name, const std::string& summary, const std::string& example,
                              std::shared_ptr<CertsArgs> args) {
  auto cmd = std::make_shared<ClientCommand>(name, summary, flags);
  cmd->add_option("--dir", args->dir, "directory of the CA and the certificates")->required();
  cmd->add_option("--days", args->days, "validity in days (CA default 3650, node default 825)");
  cmd->add_flag("--json", args->json, "print the written files as JSON {\"cert\", \"key\"}");
  cmd->footer("Example:\n" + example);
  parent.add_subcommand(cmd);
  return *cmd;
}

}  // namespace

void add_certs_commands(CLI::App& root, const std::shared_ptr<GlobalFlags>& flags) {
  auto certs = std::make_shared<ClientCommand>(
      "certs", "Make a cluster CA and node certificates for TLS (local files, no API call)", flags);
  certs->require_subcommand(1);
  certs->group("Client commands");
  certs->footer(
      "The API listener (--tls-cert/--tls-key), agents (--tls-ca) and the CLI (--ca) use them; see "
      "docs/architecture.md \"TLS\".");
  root.add_subcommand(certs);
  auto args = std::make_shared<CertsArgs>();
  auto& init = add_certs_verb(*certs, flags, "init", "Make the cluster CA: ca.crt and ca.key (EC P-256)",
                              "  stele certs init --dir /etc/stele/tls", args);
  init.add_flag("--force", args->force, "replace an existing CA (certificates it signed no longer verify)");
  init.set_runner([args](const ApiClient&) { return run_init(*args); });
  auto& node = add_certs_verb(*certs, flags, "node", "Make NAME.crt and NAME.key signed by the cluster CA",
                              "  stele certs node server1 --dir /etc/stele/tls --ip 10.0.0.5 --dns stele.internal",
                              args);
  node.add_option("name", args->name, "node name: file stem and certificate CN")->required();
  node.add_option("--ip", args->ips, "IP address the certificate is valid for (subjectAltName); repeatable");
  node.add_option("--dns", args->dns, "DNS name the certificate is valid for (subjectAltName); repeatable");
  node.set_runner([args](const ApiClient&) { return run_node(*args); });
}

}  // namespace stele::cli
