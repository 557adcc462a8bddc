// What each simulated site trains and evaluates on, worked out before the federation starts so
// that the simulator can print every site's class histogram (and, in threads mode, hand the site
// agents the data files it has already loaded).
#ifndef FEDMED_SIMULATOR_SITE_SHARDS_H_
#define FEDMED_SIMULATOR_SITE_SHARDS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "simulator/simulation_config.h"

namespace fedmed {

struct MedMnist;  // common/data/medmnist.h

// What one site trains and evaluates on, as the site agent will select it.
struct SiteShardSummary {
  std::string site;                      // "site-k"
  std::string path;                      // the resolved data file
  std::vector<int64_t> train_histogram;  // training images per class
  int64_t train_size = 0;                // images
  int64_t test_size = 0;                 // images
};

// MedMNIST .npz files loaded once, by resolved path (threads mode shares them with the site
// agents).
using LoadedFiles = std::map<std::string, std::shared_ptr<const MedMnist>>;

// Loads (once, into `files`) every .npz file the sites use and returns each site's share,
// computed with the partition code the site agents use (common/data/partition.h; the minimum
// sizes of LoadSiteSplit: 10 training images and 1 test image per site). Sites with another
// format are loaded as the site will load them (LoadSiteSplit,
// common/data/hospital/site_images.h), and not kept. Throws DataError / ConfigError as
// LoadMedMnist, LoadSiteSplit and PartitionIndices do.
std::vector<SiteShardSummary> DescribeSiteShards(const SimulationConfig& config,
                                                 const std::string& data_root, LoadedFiles* files);

// Prints one line per site: its name, image counts and training class histogram. Never throws
// (beyond what `out` is set to throw).
void PrintSiteShards(const std::vector<SiteShardSummary>& shards, std::ostream& out);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_SITE_SHARDS_H_
