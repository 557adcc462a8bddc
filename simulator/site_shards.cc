#include "simulator/site_shards.h"

#include <iomanip>
#include <memory>
#include <string>
#include <vector>

#include "common/data/hospital/site_images.h"
#include "common/data/medmnist.h"
#include "common/data/partition.h"
#include "common/data/site_data_config.h"
#include "common/util/data_path.h"

namespace fedmed {

namespace {

// The smallest shares LoadSiteSplit asks the partition for (common/data/hospital/site_images.h).
constexpr int64_t kMinTrainPerSite = 10;
constexpr int64_t kMinTestPerSite = 1;

// "0:12 1:30": the count of each class.
std::string HistogramText(const std::vector<int64_t>& h) {
  std::string out;
  for (std::size_t c = 0; c < h.size(); ++c) {
    out += (c ? " " : "") + std::to_string(c) + ":" + std::to_string(h[c]);
  }
  return out;
}

}  // namespace

std::vector<SiteShardSummary> DescribeSiteShards(const SimulationConfig& config,
                                                 const std::string& data_root, LoadedFiles* files) {
  auto load = [&](const std::string& path) {
    auto it = files->find(path);
    if (it == files->end()) {
      it = files->emplace(path, std::make_shared<const MedMnist>(LoadMedMnist(path))).first;
    }
    return it->second;
  };
  std::vector<SiteShardSummary> out;
  if (!config.site_paths.empty()) {
    for (int k = 1; k <= config.sites; ++k) {
      const SiteDataConfig site = SiteDataFor(config, k);
      const std::string path = ResolveDataPath(site.path, data_root);
      SiteShardSummary s;
      s.site = "site-" + std::to_string(k);
      s.path = path;
      if (ParseDataFormat(site.format) == DataFormat::kMedMnist) {
        const std::shared_ptr<const MedMnist> data = load(path);
        s.train_histogram = data->train.ClassHistogram();
        s.train_size = data->train.size();
        s.test_size = data->test.size();
      } else {  // decoded as the site will decode it, to show what it trains on
        const ImageSet train = LoadSiteSplit(site, Split::kTrain, data_root);
        s.train_histogram = train.ClassHistogram();
        s.train_size = train.size();
        s.test_size = LoadSiteSplit(site, Split::kTest, data_root).size();
      }
      out.push_back(std::move(s));
    }
    return out;
  }
  const std::string path = ResolveDataPath(config.data_path, data_root);
  const std::shared_ptr<const MedMnist> data = load(path);
  PartitionSpec spec;
  spec.scheme = ParsePartitionScheme(config.partition);
  spec.num_sites = config.sites;
  spec.alpha = config.alpha;
  spec.seed = config.data_seed;
  spec.min_samples_per_site = kMinTrainPerSite;
  const auto train = PartitionIndices(data->train.labels, data->train.num_classes, spec);
  spec.min_samples_per_site = kMinTestPerSite;
  const auto test = PartitionIndices(data->test.labels, data->test.num_classes, spec);
  for (int k = 0; k < config.sites; ++k) {
    SiteShardSummary s;
    s.site = "site-" + std::to_string(k + 1);
    s.path = path;
    s.train_histogram.assign(static_cast<size_t>(data->train.num_classes), 0);
    for (const int64_t i : train[static_cast<size_t>(k)]) {
      ++s.train_histogram[static_cast<size_t>(data->train.labels[static_cast<size_t>(i)])];
    }
    s.train_size = static_cast<int64_t>(train[static_cast<size_t>(k)].size());
    s.test_size = static_cast<int64_t>(test[static_cast<size_t>(k)].size());
    out.push_back(std::move(s));
  }
  return out;
}

void PrintSiteShards(const std::vector<SiteShardSummary>& shards, std::ostream& out) {
  out << "site data (training images per class; test images):\n";
  for (const SiteShardSummary& s : shards) {
    out << "  " << std::left << std::setw(9) << s.site << std::right << std::setw(6)
        << s.train_size << " train [" << HistogramText(s.train_histogram) << "], "
        << s.test_size << " test\n";
  }
  out << std::flush;
}

}  // namespace fedmed
