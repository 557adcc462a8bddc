#include "common/config/shared_sections.h"

namespace fedmed {

ConfigSection<TlsFiles> TlsSection(const TlsParty& party) {
  using K = ConfigKey<TlsFiles>;
  const std::string own = party.self == "site" ? "this site's" : "the " + party.self + "'s";
  return {"tls",
          "",
          {
              K("ca_cert", &TlsFiles::ca_cert,
                "The federation CA certificate: " + party.peer + " certificate must chain to it.",
                NonEmpty("the CA certificate file"))
                  .Required()
                  .Path(),
              K("cert", &TlsFiles::cert,
                "This " + party.self + "'s certificate and private key (keep the key mode 0600).",
                NonEmpty(own + " certificate file"))
                  .Required()
                  .Path(),
              K("key", &TlsFiles::key, "", NonEmpty(own + " private key file")).Required().Path(),
          }};
}

const std::vector<ConfigKey<PreprocessSpec>>& PreprocessKeys() {
  using K = ConfigKey<PreprocessSpec>;
  using P = PreprocessSpec;
  static const std::vector<K> keys = {
      K("image_size", &P::image_size,
        "Preprocessing, the same at every site: square size in pixels (0 = keep), channels\n"
        "(1 gray, 3 RGB, 0 = keep), normalization \"medmnist\" ((x/255-0.5)/0.5) or \"mean_std\"\n"
        "with per-channel mean and std, and per-image histogram equalisation."),
      K("channels", &P::channels, ""),
      K("normalization", &P::normalization, ""),
      K("mean", &P::mean, ""),
      K("std", &P::std, ""),
      K("equalize", &P::equalize, ""),
  };
  return keys;
}

}  // namespace fedmed
