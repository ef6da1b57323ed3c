/* shuxin_gsr_profile.h: constants the shuxin_gsr firmware must match.
 *
 * GENERATED from firmware_configs/devices/shuxin_gsr.yaml by
 * `shuxin ble firmware-header` (shuxin.edge.firmware_header). Do not edit: change the
 * YAML and regenerate; tests/unit/edge/test_device_profiles.py fails while stale.
 * Specification: docs/edge-ble.md, "The shuxin EDA profile".
 */
#ifndef SHUXIN_GSR_PROFILE_H
#define SHUXIN_GSR_PROFILE_H

#include <stdint.h>

#define SHUXIN_GSR_PROFILE_NAME "shuxin_gsr"
#define SHUXIN_GSR_FORMAT "shuxin_eda_v1"
#define SHUXIN_GSR_ADVERTISED_NAME_PREFIX "SHUXIN-GSR"

/* GATT. Strings for Arduino-ESP32 BLEDevice / NimBLE-Arduino; the *_UUID128_LE byte
 * lists are in the little-endian order of ESP-IDF NimBLE's BLE_UUID128_INIT(). The
 * service UUID must be advertised (advertisement or scan response). */
#define SHUXIN_GSR_SERVICE_UUID "232c0001-2bb7-446b-be03-d42515ed27a5"
#define SHUXIN_GSR_SERVICE_UUID128_LE 0xa5, 0x27, 0xed, 0x15, 0x25, 0xd4, 0x03, 0xbe, 0x6b, 0x44, 0xb7, 0x2b, 0x01, 0x00, 0x2c, 0x23
#define SHUXIN_GSR_DATA_UUID "232c0002-2bb7-446b-be03-d42515ed27a5"  /* notify */
#define SHUXIN_GSR_DATA_UUID128_LE 0xa5, 0x27, 0xed, 0x15, 0x25, 0xd4, 0x03, 0xbe, 0x6b, 0x44, 0xb7, 0x2b, 0x02, 0x00, 0x2c, 0x23
#define SHUXIN_GSR_CONTROL_UUID "232c0003-2bb7-446b-be03-d42515ed27a5"  /* write with response */
#define SHUXIN_GSR_CONTROL_UUID128_LE 0xa5, 0x27, 0xed, 0x15, 0x25, 0xd4, 0x03, 0xbe, 0x6b, 0x44, 0xb7, 0x2b, 0x03, 0x00, 0x2c, 0x23
#define SHUXIN_GSR_BATTERY_SERVICE_UUID16 0x180F
#define SHUXIN_GSR_BATTERY_LEVEL_UUID16 0x2A19  /* read, notify; uint8 % */

/* Data frame (little-endian): header, then sample_count samples. */
#define SHUXIN_GSR_HEADER_BYTES 10
#define SHUXIN_GSR_FRAME_TYPE_VOLTAGE_0P1MV 0x01  /* uint16 samples, 0.1 mV at the ADC */
#define SHUXIN_GSR_FRAME_TYPE_CONDUCTANCE_NS 0x02  /* uint32 samples, nS */
#define SHUXIN_GSR_FLAG_ELECTRODE_OFF 0x01
#define SHUXIN_GSR_FLAG_ADC_SATURATED 0x02
#define SHUXIN_GSR_FLAG_BATTERY_LOW 0x04
#define SHUXIN_GSR_INVALID_VOLTAGE 0xFFFFu
#define SHUXIN_GSR_INVALID_CONDUCTANCE 0xFFFFFFFFu
#define SHUXIN_GSR_MAX_SAMPLES_PER_FRAME 32
#define SHUXIN_GSR_MAX_SAMPLE_RATE_HZ 32

/* Rates and framing. */
#define SHUXIN_GSR_DEFAULT_SAMPLE_RATE_HZ 8
#define SHUXIN_GSR_SUPPORTED_RATES_HZ {4, 8, 16, 32}
#define SHUXIN_GSR_SUPPORTED_RATE_COUNT 4
#define SHUXIN_GSR_DEFAULT_FRAME_TYPE 0x01
#define SHUXIN_GSR_SAMPLES_PER_FRAME 4

/* Control point: write {op, value}; reply ATT error 0x80 to an unsupported value. */
#define SHUXIN_GSR_CONTROL_SET_RATE 0x01
#define SHUXIN_GSR_CONTROL_SET_FRAME_TYPE 0x02
#define SHUXIN_GSR_ATT_ERROR_VALUE_NOT_SUPPORTED 0x80

/* Calibration (series reference resistor, constant-voltage excitation):
 *   V_r = raw * VOLTAGE_LSB_V / AMPLIFIER_GAIN
 *   G   = V_r / (REFERENCE_OHM * (EXCITATION_V - V_r))  [S] */
#define SHUXIN_GSR_EXCITATION_V 0.5f
#define SHUXIN_GSR_REFERENCE_OHM 200000.0f
#define SHUXIN_GSR_AMPLIFIER_GAIN 4.0f
#define SHUXIN_GSR_VOLTAGE_LSB_V 0.0001f
#define SHUXIN_GSR_ADC_FULL_SCALE_V 2.45f
#define SHUXIN_GSR_VALID_MIN_US 0.05f
#define SHUXIN_GSR_VALID_MAX_US 100.0f
#define SHUXIN_GSR_ELECTRODE_OFF_BELOW_US 0.05f
#define SHUXIN_GSR_ELECTRODE_OFF_BELOW_RAW 198u  /* frame-type-1 sample at ELECTRODE_OFF_BELOW_US */
#define SHUXIN_GSR_BATTERY_LOW_PERCENT 15

typedef struct __attribute__((packed)) {
    uint8_t frame_type;      /* FRAME_TYPE_* */
    uint8_t flags;           /* FLAG_*; other bits 0 */
    uint16_t sequence;       /* +1 per frame, wraps */
    uint32_t first_sample_ms; /* device ms since boot of sample 0, wraps */
    uint8_t sample_rate_hz;  /* one of SUPPORTED_RATES_HZ */
    uint8_t sample_count;    /* 1..MAX_SAMPLES_PER_FRAME */
} shuxin_gsr_frame_header_t;

#ifdef __cplusplus
static_assert(sizeof(shuxin_gsr_frame_header_t) == SHUXIN_GSR_HEADER_BYTES, "frame header must be packed");
#else
_Static_assert(sizeof(shuxin_gsr_frame_header_t) == SHUXIN_GSR_HEADER_BYTES, "frame header must be packed");
#endif

/* Skin conductance in uS for a frame-type-1 sample; negative when impossible. */
static inline float shuxin_gsr_conductance_us(uint16_t raw)
{
    const float v_r = (float)raw * SHUXIN_GSR_VOLTAGE_LSB_V / SHUXIN_GSR_AMPLIFIER_GAIN;
    if (raw == SHUXIN_GSR_INVALID_VOLTAGE || v_r >= SHUXIN_GSR_EXCITATION_V) {
        return -1.0f;
    }
    return 1e6f * v_r / (SHUXIN_GSR_REFERENCE_OHM * (SHUXIN_GSR_EXCITATION_V - v_r));
}

#endif /* SHUXIN_GSR_PROFILE_H */
