// A charge point built on an OCPP implementation that is not ChargeLedger's: ChargeTime's
// Java-OCA-OCPP (OCPP 1.6J client, its own framing, JSON and WebSocket stack). It charges once:
// boot, status, authorize, start, status Charging, meter values (Wh, kWh, power), status
// SuspendedEV, a last reading, stop. Run from source with the classpath of tests/simulator/pom.xml:
//
//     java -cp CLASSPATH tests/simulator/ChargeTimeStation.java ws://HOST:PORT/ocpp STATION_ID
//
// Prints one line "transactionId=N" and exits 0, or prints the failure and exits 1.

import eu.chargetime.ocpp.ClientEvents;
import eu.chargetime.ocpp.JSONClient;
import eu.chargetime.ocpp.feature.profile.ClientCoreEventHandler;
import eu.chargetime.ocpp.feature.profile.ClientCoreProfile;
import eu.chargetime.ocpp.model.Confirmation;
import eu.chargetime.ocpp.model.Request;
import eu.chargetime.ocpp.model.core.*;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

public class ChargeTimeStation {
  static final ZonedDateTime START = ZonedDateTime.of(2026, 4, 2, 9, 0, 0, 0, ZoneOffset.UTC);

  public static void main(String[] args) throws Exception {
    ClientCoreProfile core = new ClientCoreProfile(new Refuses());
    JSONClient client = new JSONClient(core, args[1]);
    CountDownLatch opened = new CountDownLatch(1);
    client.connect(
        args[0],
        new ClientEvents() {
          public void connectionOpened() {
            opened.countDown();
          }

          public void connectionClosed() {}
        });
    if (!opened.await(10, TimeUnit.SECONDS)) {
      fail("no connection to " + args[0]);
    }
    send(client, core.createBootNotificationRequest("ChargeTime", "Java-OCA-OCPP"));
    send(client, status(core, ChargePointStatus.Available, 0));
    send(client, core.createAuthorizeRequest("CT-TAG"));
    StartTransactionConfirmation start =
        (StartTransactionConfirmation)
            send(client, core.createStartTransactionRequest(1, "CT-TAG", 250_000, START));
    int transactionId = start.getTransactionId();
    send(client, status(core, ChargePointStatus.Charging, 1));
    send(client, meter(core, transactionId, 10, register("253500", "Wh"), power("21.0")));
    send(client, meter(core, transactionId, 20, register("257.000", "kWh"), power("21.0")));
    send(client, status(core, ChargePointStatus.SuspendedEV, 25));
    send(client, meter(core, transactionId, 30, register("257.100", "kWh"), power("0")));
    StopTransactionRequest stop =
        core.createStopTransactionRequest(257_100, START.plusMinutes(35), transactionId);
    stop.setReason(Reason.EVDisconnected);
    send(client, stop);
    System.out.println("transactionId=" + transactionId);
    client.disconnect();
    System.exit(0);
  }

  static StatusNotificationRequest status(
      ClientCoreProfile core, ChargePointStatus status, int minute) {
    StatusNotificationRequest request =
        core.createStatusNotificationRequest(1, ChargePointErrorCode.NoError, status);
    request.setTimestamp(START.plusMinutes(minute));
    return request;
  }

  static SampledValue register(String value, String unit) {
    SampledValue sampled = new SampledValue(value);
    sampled.setMeasurand("Energy.Active.Import.Register");
    sampled.setUnit(unit);
    return sampled;
  }

  static SampledValue power(String kilowatts) {
    SampledValue sampled = new SampledValue(kilowatts);
    sampled.setMeasurand("Power.Active.Import");
    sampled.setUnit("kW");
    return sampled;
  }

  static MeterValuesRequest meter(
      ClientCoreProfile core, int transactionId, int minute, SampledValue... values) {
    MeterValuesRequest request = core.createMeterValuesRequest(1, START.plusMinutes(minute), values);
    request.setTransactionId(transactionId);
    return request;
  }

  static Confirmation send(JSONClient client, Request request) throws Exception {
    Confirmation confirmation =
        client.send(request).toCompletableFuture().get(15, TimeUnit.SECONDS);
    if (confirmation == null) {
      fail("no confirmation of " + request.getClass().getSimpleName());
    }
    return confirmation;
  }

  static void fail(String message) {
    System.err.println("ChargeTimeStation: " + message);
    System.exit(1);
  }

  /** This station takes no orders from the central system in this run. */
  static class Refuses implements ClientCoreEventHandler {
    public ChangeAvailabilityConfirmation handleChangeAvailabilityRequest(
        ChangeAvailabilityRequest request) {
      return new ChangeAvailabilityConfirmation(AvailabilityStatus.Rejected);
    }

    public GetConfigurationConfirmation handleGetConfigurationRequest(
        GetConfigurationRequest request) {
      return new GetConfigurationConfirmation();
    }

    public ChangeConfigurationConfirmation handleChangeConfigurationRequest(
        ChangeConfigurationRequest request) {
      return new ChangeConfigurationConfirmation(ConfigurationStatus.Rejected);
    }

    public ClearCacheConfirmation handleClearCacheRequest(ClearCacheRequest request) {
      return new ClearCacheConfirmation(ClearCacheStatus.Rejected);
    }

    public DataTransferConfirmation handleDataTransferRequest(DataTransferRequest request) {
      return new DataTransferConfirmation(DataTransferStatus.Rejected);
    }

    public RemoteStartTransactionConfirmation handleRemoteStartTransactionRequest(
        RemoteStartTransactionRequest request) {
      return new RemoteStartTransactionConfirmation(RemoteStartStopStatus.Rejected);
    }

    public RemoteStopTransactionConfirmation handleRemoteStopTransactionRequest(
        RemoteStopTransactionRequest request) {
      return new RemoteStopTransactionConfirmation(RemoteStartStopStatus.Rejected);
    }

    public ResetConfirmation handleResetRequest(ResetRequest request) {
      return new ResetConfirmation(ResetStatus.Rejected);
    }

    public UnlockConnectorConfirmation handleUnlockConnectorRequest(
        UnlockConnectorRequest request) {
      return new UnlockConnectorConfirmation(UnlockStatus.NotSupported);
    }
  }
}
