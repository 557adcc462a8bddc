// fedmed-pki: provisions a federation (see tools/pki/provision.h).
//
//   fedmed-pki init --out DIR --sites site-1,site-2,site-3 [--federation NAME]
//       [--coordinator-dns NAME]... [--coordinator-ip IP]... [--coordinator-address host:port]
//       [--days N] [--ca-days N] [--eval-data PATH] [--site-data PATH] [--partition KIND]
//   fedmed-pki add-site --out DIR --name NAME [--coordinator-address host:port] [--days N]
//       [--site-data PATH]
//   fedmed-pki revoke --out DIR (--name NAME | --operator) [--reason REASON] [--crl-days N]
//   fedmed-pki crl --out DIR [--crl-days N]
//
// Prints what it wrote and what to do next. Exit status 0 on success, 1 on any error (printed
// as one line), 2 for command-line mistakes.
#include <CLI/CLI.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "common/crypto/pki.h"
#include "common/util/error.h"
#include "common/util/file_io.h"
#include "tools/pki/provision.h"
#include "tools/pki/revocation.h"

namespace fedmed {
namespace {

namespace fs = std::filesystem;

std::string Join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

void PrintInit(const ProvisionOptions& options, const ProvisionResult& result) {
  const fs::path out(options.out_dir);
  const fs::path coordinator_dir = fs::path(result.coordinator_config).parent_path();
  const CertificateInfo ca = InspectCertificate(ReadFile(result.ca_cert, "CA"));
  const CertificateInfo coordinator = InspectCertificate(ReadFile(
      (coordinator_dir / "coordinator.pem").string(), "coordinator certificate"));
  std::vector<std::string> names = coordinator.dns_names;
  names.insert(names.end(), coordinator.ip_addresses.begin(), coordinator.ip_addresses.end());

  std::cout << "Provisioned federation \"" << options.federation << "\" in " << out.string()
            << ":\n"
            << "  CA certificate  " << result.ca_cert << " (CN=" << ca.common_name
            << ", valid until " << FormatUtc(ca.not_after) << ")\n"
            << "  CA private key  " << result.ca_key
            << " (mode 0600; keep it offline, it never goes to the coordinator or a site)\n"
            << "  CA's CRL        " << (out / "ca" / "crl.pem").string()
            << " (empty; fedmed-pki revoke adds to it)\n"
            << "  coordinator     " << coordinator_dir.string()
            << "/: coordinator.toml, coordinator.pem, coordinator.key, ca.pem,\n"
            << "                  crl.pem ([tls] crl), audit.pem, audit.key (signs the "
               "coordinator's audit log)\n"
            << "                  CN=" << coordinator.common_name << " for " << Join(names)
            << ", valid until " << FormatUtc(coordinator.not_after) << "\n"
            << "                  SHA-256 " << coordinator.sha256_fingerprint << "\n";
  std::cout << "  operator        " << fs::path(result.operator_cert).parent_path().string()
            << "/: operator.pem, operator.key, ca.pem, coordinator_address\n"
            << "                  (fedmed-admin; OU=fedmed operator: it cannot act as a site)\n";
  for (const auto& [name, config] : result.site_configs) {
    std::cout << "  site " << name << std::string(name.size() < 10 ? 10 - name.size() : 0, ' ')
              << " " << fs::path(config).parent_path().string() << "/: site.toml, " << name
              << ".pem, " << name << ".key, ca.pem, audit.pem, audit.key\n";
  }
  std::cout << "\nNext steps:\n"
            << "  1. Copy " << coordinator_dir.string()
            << "/ to the coordinator machine and start it there:\n"
            << "       fedmed-coordinator --config coordinator.toml\n"
            << "     Sites dial " << options.coordinator_address
            << "; the coordinator's certificate is valid for " << Join(names) << ".\n"
            << "  2. Copy " << (out / "sites").string()
            << "/<name>/ to hospital <name> over a channel you trust (it holds\n"
            << "     the site's private key), set [data] path in its site.toml to the hospital's\n"
            << "     images, and start the site there:\n"
            << "       fedmed-site --config site.toml\n"
            << "  3. Keep " << fs::path(result.operator_cert).parent_path().string()
            << "/ with the operator; it administers the running federation:\n"
            << "       fedmed-admin --dir " << fs::path(result.operator_cert).parent_path().string()
            << " status   (pause, resume, stop, exclude, extend)\n"
            << "  4. Keep " << (out / "ca").string()
            << "/ offline. To add a hospital later:\n"
            << "       fedmed-pki add-site --out " << out.string() << " --name <name>\n"
            << "     To withdraw a site's certificates (a stolen machine, a hospital leaving):\n"
            << "       fedmed-pki revoke --out " << out.string()
            << " --name <name> --reason keyCompromise\n";
}

void PrintRevocation(const RevocationResult& result, bool site = true) {
  for (const RevokedCertificate& entry : result.added) {
    std::cout << "Revoked CN=" << entry.common_name << " (serial " << entry.serial << ", "
              << (entry.reason.empty() ? "no reason" : entry.reason) << ")\n";
  }
  std::cout << "Wrote CRL number " << result.number << " (" << result.contents.revoked.size()
            << " revoked certificate(s), next update " << FormatUtc(result.contents.next_update)
            << ") to " << result.crl << "\n";
  if (!result.coordinator_crl.empty()) {
    std::cout << "  and to " << result.coordinator_crl
              << " (a coordinator running on it re-reads it within a second)\n";
  }
  std::cout << "\nNext steps:\n"
            << "  Copy " << result.crl
            << " over the coordinator's [tls] crl file where the coordinator runs elsewhere;\n"
            << "  it refuses revoked certificates at their next call, without a restart.\n"
            << "  Renew the list before its next update: fedmed-pki crl --out <dir>\n";
  if (site && !result.added.empty()) {
    std::cout << "  To reissue the site under the same name with new keys:\n"
              << "       fedmed-pki add-site --out <dir> --name " << result.added.front().common_name
              << "\n";
  }
}

void PrintAddSite(const std::string& name, const ProvisionResult& result) {
  const fs::path site_dir = fs::path(result.site_configs.at(name)).parent_path();
  std::cout << "Issued site " << name << " in " << site_dir.string() << "/: site.toml, " << name
            << ".pem, " << name << ".key, ca.pem, audit.pem, audit.key\n"
            << "\nNext steps:\n";
  if (result.allowed_sites_line.empty()) {
    std::cout << "  1. Add \"" << name
              << "\" to [tls] allowed_sites in the coordinator's coordinator.toml";
  } else {
    std::cout << "  1. In the coordinator's coordinator.toml, replace the [tls] allowed_sites "
                 "line with\n"
              << "       " << result.allowed_sites_line << "\n    ";
  }
  std::cout << " and restart the coordinator.\n"
            << "  2. Copy " << site_dir.string() << "/ to hospital " << name
            << "\n     over a channel you trust and start the site there:\n"
            << "       fedmed-site --config site.toml\n";
}

int Main(int argc, char** argv) {
  CLI::App app{
      "fedmed-pki: creates the federation CA and the certificates, keys and configuration files "
      "of the coordinator and the sites."};
  app.require_subcommand(1);

  ProvisionOptions init;
  CLI::App* init_cmd =
      app.add_subcommand("init", "Create a new federation: CA, coordinator, sites");
  init_cmd->add_option("--out", init.out_dir, "New or empty output directory")->required();
  init_cmd
      ->add_option("--sites", init.site_names,
                   "Site names, comma-separated; each becomes a certificate CN")
      ->required()
      ->delimiter(',');
  init_cmd->add_option("--federation", init.federation, "Federation name")->capture_default_str();
  init_cmd
      ->add_option("--coordinator-dns", init.coordinator_dns,
                   "DNS name of the coordinator for its certificate (repeatable)")
      ->capture_default_str();
  init_cmd
      ->add_option("--coordinator-ip", init.coordinator_ips,
                   "IP address of the coordinator for its certificate (repeatable)")
      ->capture_default_str();
  init_cmd
      ->add_option("--coordinator-address", init.coordinator_address,
                   "host:port the sites dial; the host is added to the certificate's names")
      ->capture_default_str();
  init_cmd
      ->add_option("--days", init.validity_days, "Validity of coordinator and site certificates")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  init_cmd->add_option("--ca-days", init.ca_validity_days, "Validity of the CA certificate")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  init_cmd
      ->add_option("--eval-data", init.coordinator_template.eval_data,
                   "Coordinator's held-out images (.npz, under the data root)")
      ->capture_default_str();
  init_cmd
      ->add_option("--site-data", init.site_template.data.path,
                   "Sites' image archive (.npz), to edit per hospital")
      ->capture_default_str();
  init_cmd
      ->add_option("--partition", init.site_template.data.partition,
                   "none: each site uses its whole file; iid|dirichlet|quantity: site i takes "
                   "shard i of one shared file (demonstrations)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "iid", "dirichlet", "quantity"}));

  std::string add_out;
  std::string add_name;
  int add_days = 365;
  SiteConfig add_template;
  add_template.data.path = kDefaultDataFile;
  CLI::App* add_cmd = app.add_subcommand("add-site", "Issue one more site from an existing CA");
  add_cmd->add_option("--out", add_out, "Directory written by fedmed-pki init")->required();
  add_cmd->add_option("--name", add_name, "The new site's name (its certificate CN)")->required();
  add_cmd->add_option("--coordinator-address", add_template.coordinator_address,
                      "host:port the site dials (default: as in the existing sites' configs)");
  add_cmd->add_option("--days", add_days, "Validity of the certificate")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  add_cmd
      ->add_option("--site-data", add_template.data.path, "The site's image archive (.npz)")
      ->capture_default_str();

  std::string revoke_out;
  std::string revoke_name;
  std::string revoke_reason = "unspecified";
  int crl_days = kDefaultCrlDays;
  CLI::App* revoke_cmd = app.add_subcommand(
      "revoke", "Revoke a site's certificates (TLS and audit log) in the CA's CRL");
  revoke_cmd->add_option("--out", revoke_out, "Directory written by fedmed-pki init")->required();
  bool revoke_operator = false;
  CLI::Option* revoke_name_option =
      revoke_cmd->add_option("--name", revoke_name, "The site to revoke");
  revoke_cmd
      ->add_flag("--operator", revoke_operator,
                 "Revoke the operator certificate (DIR/operator/) instead of a site")
      ->excludes(revoke_name_option);
  revoke_name_option->excludes("--operator");
  revoke_cmd
      ->add_option("--reason", revoke_reason,
                   "RFC 5280 reason: unspecified, keyCompromise, cACompromise, "
                   "affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn")
      ->capture_default_str();
  revoke_cmd->add_option("--crl-days", crl_days, "Days until the CRL's next update")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::string crl_out;
  CLI::App* crl_cmd =
      app.add_subcommand("crl", "Re-sign the CRL with the same entries and a new next update");
  crl_cmd->add_option("--out", crl_out, "Directory written by fedmed-pki init")->required();
  crl_cmd->add_option("--crl-days", crl_days, "Days until the CRL's next update")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  CLI11_PARSE(app, argc, argv);
  try {
    if (*init_cmd) {
      PrintInit(init, ProvisionFederation(init));
    } else if (*revoke_cmd) {
      if (revoke_operator) {
        PrintRevocation(RevokeOperator(revoke_out, revoke_reason, crl_days), false);
      } else if (revoke_name.empty()) {
        std::cerr << "fedmed-pki revoke: --name or --operator is required\n";
        return 2;
      } else {
        PrintRevocation(RevokeSite(revoke_out, revoke_name, revoke_reason, crl_days));
      }
    } else if (*crl_cmd) {
      PrintRevocation(RenewCrl(crl_out, crl_days));
    } else {
      PrintAddSite(add_name, AddSite(add_out, add_name, add_template, add_days));
    }
  } catch (const std::exception& e) {
    std::cerr << "fedmed-pki: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace fedmed

int main(int argc, char** argv) {
  // A file-size limit (RLIMIT_FSIZE) then fails the write with EFBIG, which WriteFileAtomically
  // reports naming the file, instead of killing the process (common/util/file_io.h).
  std::signal(SIGXFSZ, SIG_IGN);
  return fedmed::Main(argc, argv);
}
